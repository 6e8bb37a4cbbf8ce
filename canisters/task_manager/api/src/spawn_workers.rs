//! `spawn_workers` (update, controllers): creates worker canisters through
//! the management canister (controlled by the task manager and the caller),
//! installs the uploaded worker module in them (`install_chunked_code`) and
//! adds them as workers.

use candid::{CandidType, Deserialize};

use crate::{Error, WorkerInfo};

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct SpawnWorkersArgs {
    /// How many (1 to 16 per call).
    pub count: u32,
    /// Cycles each new canister starts with (taken from the task manager's).
    pub cycles_per_worker: u64,
}

pub type Args = SpawnWorkersArgs;
pub type Response = Result<Vec<WorkerInfo>, Error>;
