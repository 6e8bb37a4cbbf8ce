//! `forward` (update; pipeline peers): runs this worker's stages on the
//! hidden states of new positions of a job, keeping the job's KV caches,
//! and returns what the last of its stages produced.

use candid::{CandidType, Deserialize};

use crate::{StageData, WorkerError};

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq)]
pub struct ForwardArgs {
    pub job: u64,
    /// Absolute position of the first new token: the positions this
    /// worker's caches of the job already hold.
    pub start_position: u32,
    /// Hidden states (`StageData::Hidden`).
    pub data: StageData,
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq)]
pub struct ForwardOutput {
    /// Hidden states for the next peer, or logits from the last stage.
    pub data: StageData,
    /// Instructions this message used.
    pub instructions: u64,
}

pub type Args = ForwardArgs;
pub type Response = Result<ForwardOutput, WorkerError>;
