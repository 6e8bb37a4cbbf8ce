use ic_cdk::update;
use task_manager_api::generate::{Args, Response};

use crate::dispatch;
use crate::env::{CanisterEnv, Environment};
use crate::model::jobs;
use crate::state::{mutate_state, State};

#[update]
fn generate(request: task_manager_api::generate::Args) -> task_manager_api::generate::Response {
    let job = mutate_state(|state| generate_impl(state, &CanisterEnv, request))?;
    dispatch::schedule();
    Ok(job)
}

pub(crate) fn generate_impl(state: &mut State, env: &impl Environment, request: Args) -> Response {
    jobs::create_job(state, env.caller(), env.now(), request)
}
