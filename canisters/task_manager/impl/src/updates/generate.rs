use ic_cdk::update;

use crate::guards::generate_arg;
use task_manager_api::generate::Args;
use task_manager_api::{Error, UserError};

use crate::dispatch;
use crate::env::{CanisterEnv, Environment};
use crate::model::jobs;
use crate::state::{mutate_state, State};

#[update(guard = "generate_arg")]
fn generate(request: task_manager_api::generate::Args) -> task_manager_api::generate::Response {
    let job = mutate_state(|state| generate_impl(state, &CanisterEnv, request));
    if job.is_ok() {
        dispatch::schedule();
    }
    job.map_err(UserError::from).into()
}

pub(crate) fn generate_impl(
    state: &mut State,
    env: &impl Environment,
    request: Args,
) -> Result<u64, Error> {
    jobs::create_job(state, env.caller(), env.now(), request)
}
