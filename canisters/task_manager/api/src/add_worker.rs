//! `add_worker` (update, controllers): registers a worker canister that
//! was installed with this task manager as its `task_manager`.

use candid::Principal;

pub type Args = Principal;
pub type Response = crate::results::WorkerResult;
