//! `worker_ready` (update; workers): a worker loaded its stages (after
//! `load_stages`, or again after an upgrade), or failed to.

use candid::{CandidType, Deserialize};

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct WorkerReadyArgs {
    pub model: String,
    pub stages: Vec<u32>,
    /// Why the reload failed, if it did.
    pub error: Option<String>,
}

pub type Args = WorkerReadyArgs;
pub type Response = crate::callbacks::CallbackResult;
