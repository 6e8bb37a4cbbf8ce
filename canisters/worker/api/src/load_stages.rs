//! `load_stages` (update; the task manager or a controller): assigns this
//! worker stages of a model. The worker pulls each stage's chunks from the
//! task manager (`model_chunk`), checks every chunk's and the whole stage's
//! SHA-256 against the manifest (the chunks tile the file, so this checks
//! the whole stage), keeps them in stable memory, loads them into tract one
//! phase per message (`load_step`, a call to itself: each phase stays under
//! the instruction limit), and replies once the stages are ready to run. The worker
//! holding stage 0 also pulls the tokenizer. A worker that already holds
//! the same assignment replies at once.

use candid::{CandidType, Deserialize, Principal};
use serde_bytes::ByteBuf;

use crate::WorkerError;

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct LoadStagesArgs {
    /// The model's name in the task manager's registry.
    pub model: String,
    /// The model's `manifest.json`.
    pub manifest_json: ByteBuf,
    /// The stages this worker holds: consecutive indices.
    pub stages: Vec<u32>,
    /// The pipeline: for each stage of the model, the worker holding it
    /// (this worker at the indices of `stages`).
    pub pipeline: Vec<Principal>,
}

/// What loading cost.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct LoadReport {
    pub stages: Vec<u32>,
    /// Bytes pulled and verified (stages and, on the driver, tokenizer).
    pub bytes: u64,
    pub chunks: u32,
    /// Instructions to load the stages into tract (all load messages).
    pub load_instructions: u64,
    /// Messages the load into tract took (one phase of one stage each).
    pub load_messages: u32,
    /// The most instructions one of them used.
    pub load_max_message: u64,
}

pub type Args = LoadStagesArgs;
pub type Response = Result<LoadReport, WorkerError>;
