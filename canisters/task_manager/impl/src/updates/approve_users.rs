use ic_cdk::update;

use crate::guards::approvals_arg;
use task_manager_api::approve_users::Args;
use task_manager_api::{AdminError, Error};

use crate::env::{CanisterEnv, Environment};
use crate::model::users::{self, authorize_controller};
use crate::state::{mutate_state, State};

#[update(guard = "approvals_arg")]
fn approve_users(
    principals: task_manager_api::approve_users::Args,
) -> task_manager_api::approve_users::Response {
    mutate_state(|state| approve_users_impl(state, &CanisterEnv, principals))
        .map_err(AdminError::from)
        .into()
}

pub(crate) fn approve_users_impl(
    state: &mut State,
    env: &impl Environment,
    principals: Args,
) -> Result<u32, Error> {
    authorize_controller(env)?;
    users::approve(state, &principals, env.now())
}
