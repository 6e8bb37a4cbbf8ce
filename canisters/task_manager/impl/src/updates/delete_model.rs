use ic_cdk::update;

use crate::guards::small_arg;
use task_manager_api::delete_model::Args;
use task_manager_api::{AdminError, Error};

use crate::env::{CanisterEnv, Environment};
use crate::model::registry;
use crate::model::users::authorize_controller;
use crate::state::{mutate_state, State};

#[update(guard = "small_arg")]
fn delete_model(
    model: task_manager_api::delete_model::Args,
) -> task_manager_api::delete_model::Response {
    mutate_state(|state| delete_model_impl(state, &CanisterEnv, model))
        .map_err(AdminError::from)
        .into()
}

pub(crate) fn delete_model_impl(
    state: &mut State,
    env: &impl Environment,
    model: Args,
) -> Result<(), Error> {
    authorize_controller(env)?;
    registry::delete_model(state, &model)
}
