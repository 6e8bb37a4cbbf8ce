//! `spawn_workers` (update, controllers): creates worker canisters through
//! the management canister (controlled by the task manager and the caller),
//! installs the uploaded worker module in them (`install_chunked_code`) and
//! adds them as workers.

use candid::{CandidType, Deserialize, Nat};

use crate::{AdminError, WorkerInfo};

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct SpawnWorkersArgs {
    /// How many (1 to 16 per call).
    pub count: u32,
    /// Cycles each new canister starts with (taken from the task manager's).
    pub cycles_per_worker: Nat,
}

pub type Args = SpawnWorkersArgs;
worker_api::named_result!(SpawnWorkersResult, Vec<WorkerInfo>, AdminError);
pub type Response = SpawnWorkersResult;
