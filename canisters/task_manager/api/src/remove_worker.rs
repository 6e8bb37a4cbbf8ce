//! `remove_worker` (update, controllers): forgets a worker that holds no
//! stage (undeploy its model first). The canister itself is left to its
//! controllers.

use candid::Principal;

pub type Args = Principal;
pub type Response = crate::results::WorkerResult;
