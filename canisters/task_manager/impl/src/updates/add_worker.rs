use ic_cdk::update;
use task_manager_api::add_worker::{Args, Response};

use crate::env::{CanisterEnv, Environment};
use crate::model::jobs;
use crate::model::users::authorize_controller;
use crate::state::{mutate_state, State};

#[update]
fn add_worker(
    worker: task_manager_api::add_worker::Args,
) -> task_manager_api::add_worker::Response {
    mutate_state(|state| add_worker_impl(state, &CanisterEnv, worker))
}

pub(crate) fn add_worker_impl(state: &mut State, env: &impl Environment, worker: Args) -> Response {
    authorize_controller(env)?;
    jobs::add_worker(state, worker, false, env.now())
}
