use ic_cdk::update;

use crate::guards::small_arg;
use task_manager_api::add_worker::Args;
use task_manager_api::{AdminError, Error, WorkerInfo};

use crate::env::{CanisterEnv, Environment};
use crate::model::users::authorize_controller;
use crate::model::workers;
use crate::state::{mutate_state, State};

#[update(guard = "small_arg")]
fn add_worker(
    worker: task_manager_api::add_worker::Args,
) -> task_manager_api::add_worker::Response {
    mutate_state(|state| add_worker_impl(state, &CanisterEnv, worker))
        .map_err(AdminError::from)
        .into()
}

pub(crate) fn add_worker_impl(
    state: &mut State,
    env: &impl Environment,
    worker: Args,
) -> Result<WorkerInfo, Error> {
    authorize_controller(env)?;
    workers::add_worker(state, worker, false, env.now())
}
