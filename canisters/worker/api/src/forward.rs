//! `forward` (update; the pipeline's driver only): runs this worker's
//! stages on the hidden states of new positions of a job, keeping the
//! job's KV caches, and returns what the last of its stages produced.

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
    /// Hidden states for the next peer (`seq_len × hidden_size`, as many
    /// positions as the input), or the logits of the last position from the
    /// model's last stage (`vocab_size` values).
    pub data: StageData,
    /// Instructions this message used (at most the IC's per-message limit).
    pub instructions: u64,
}

crate::named_result!(
    /// What the peer's stages produced, or why it refused or failed.
    ForwardResult,
    ForwardOutput,
    WorkerError
);

pub type Args = ForwardArgs;
pub type Response = ForwardResult;
