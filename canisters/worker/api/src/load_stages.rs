//! `load_stages` (update; the task manager or a controller): assigns this
//! worker stages of a model.
//!
//! The worker answers at once: `Ok` once the assignment is checked and the
//! load has started (or, for the assignment it holds already, at once),
//! or why it was refused. The load then goes on by itself: the worker pulls
//! each stage's chunks from the task manager (`model_chunk`), checks every
//! chunk's and the whole stage's SHA-256 against the manifest (the chunks
//! tile the file, so this checks the whole stage), keeps them in stable
//! memory and loads them one phase per message (`load_step`, a
//! call to itself: each phase stays under the instruction limit). The
//! worker holding stage 0 also pulls the tokenizer. When the load ends,
//! ready or failed, the worker reports it by calling the task manager's
//! `worker_ready`, retrying while that call fails (see [`crate::protocol`]);
//! it does the same after an upgrade, when it loads its stages again.

use candid::{CandidType, Deserialize, Principal};
use serde_bytes::ByteBuf;

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

pub type Args = LoadStagesArgs;
/// `Ok` once the request is taken (see above), or why it was refused.
pub type Response = crate::AckResult;
