use ic_cdk::query;
use task_manager_api::job::Response;

use crate::env::{CanisterEnv, Environment};
use crate::model::jobs;
use crate::state::{read_state, State};

#[query]
fn job(id: task_manager_api::job::Args) -> task_manager_api::job::Response {
    read_state(|state| job_impl(state, &CanisterEnv, id))
}

/// The owner, controllers and the canister itself (`generate_and_wait`
/// reads its job by calling itself) see a job.
pub(crate) fn job_impl(state: &State, env: &impl Environment, id: u64) -> Response {
    let caller = env.caller();
    let privileged = env.is_controller(&caller) || caller == env.canister_self();
    jobs::job_for(state, id, caller, privileged)
}
