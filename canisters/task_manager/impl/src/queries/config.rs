use ic_cdk::query;

use crate::guards::small_arg;
use task_manager_api::{AdminError, Config, Error};

use crate::env::{CanisterEnv, Environment};
use crate::model::users::authorize_controller;
use crate::state::{read_state, State};

#[query(guard = "small_arg")]
fn config() -> task_manager_api::config::Response {
    read_state(|state| config_impl(state, &CanisterEnv))
        .map_err(AdminError::from)
        .into()
}

/// Controllers only: the settings include the registration policy and
/// the limits an attacker would probe.
pub(crate) fn config_impl(state: &State, env: &impl Environment) -> Result<Config, Error> {
    authorize_controller(env)?;
    Ok(state.config().clone())
}
