//! `status` (query; anyone): what the worker holds and does.

use candid::{CandidType, Deserialize, Principal};

/// The worker's stages.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum LoadState {
    /// Nothing assigned.
    Idle,
    /// Pulling chunks (`chunks_done` of `chunks_total`) or loading tract.
    Loading { chunks_done: u32, chunks_total: u32 },
    /// Loaded and serving.
    Ready,
    /// The last load failed.
    Failed { reason: String },
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct WorkerStatus {
    pub task_manager: Principal,
    pub model: Option<String>,
    pub stages: Vec<u32>,
    pub pipeline: Vec<Principal>,
    pub state: LoadState,
    /// Jobs whose KV caches this worker holds.
    pub active_jobs: u32,
    /// Reports (`job_finished`, `worker_ready`) the task manager has not
    /// answered yet.
    pub pending_reports: u32,
    /// Instructions of the last load into tract, all its messages.
    pub load_instructions: u64,
    pub load_messages: u32,
    /// The most instructions one load message used.
    pub load_max_message: u64,
    /// Verified chunks in stable memory.
    pub stored_chunks: u64,
}

pub type Response = WorkerStatus;
