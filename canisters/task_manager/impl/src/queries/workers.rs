use ic_cdk::query;
use task_manager_api::workers::Response;

use crate::env::{CanisterEnv, Environment};
use crate::model::jobs::worker_info;
use crate::model::users::authorize_controller;
use crate::state::{read_state, State};

#[query]
fn workers() -> task_manager_api::workers::Response {
    read_state(|state| workers_impl(state, &CanisterEnv))
}

pub(crate) fn workers_impl(state: &State, env: &impl Environment) -> Response {
    authorize_controller(env)?;
    Ok(state
        .workers
        .iter()
        .map(|e| worker_info(*e.key(), &e.value()))
        .collect())
}
