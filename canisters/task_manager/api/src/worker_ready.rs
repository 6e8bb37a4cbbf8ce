//! `worker_ready` (update; workers, one-way): a worker reloaded its stages
//! (after an upgrade), or failed to.

use candid::{CandidType, Deserialize};

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct WorkerReadyArgs {
    pub model: String,
    pub stages: Vec<u32>,
    /// Why the reload failed, if it did.
    pub error: Option<String>,
}

pub type Args = WorkerReadyArgs;
pub type Response = ();
