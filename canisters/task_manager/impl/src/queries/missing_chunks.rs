use ic_cdk::query;
use task_manager_api::missing_chunks::{Args, Response};

use crate::env::{CanisterEnv, Environment};
use crate::model::registry;
use crate::model::users::authorize_controller;
use crate::state::{read_state, State};

#[query]
fn missing_chunks(
    model: task_manager_api::missing_chunks::Args,
) -> task_manager_api::missing_chunks::Response {
    read_state(|state| missing_chunks_impl(state, &CanisterEnv, model))
}

pub(crate) fn missing_chunks_impl(state: &State, env: &impl Environment, model: Args) -> Response {
    authorize_controller(env)?;
    registry::missing_chunks(state, &model)
}
