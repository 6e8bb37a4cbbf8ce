use ic_cdk::query;

use crate::guards::small_arg;
use task_manager_api::pending_users::Args;
use task_manager_api::{AdminError, Error};

use crate::env::{CanisterEnv, Environment};
use crate::model::users::{authorize_controller, pending};
use crate::queries::paging;
use crate::state::{read_state, State};

#[query(guard = "small_arg")]
fn pending_users(
    args: task_manager_api::pending_users::Args,
) -> task_manager_api::pending_users::Response {
    read_state(|state| pending_users_impl(state, &CanisterEnv, args))
        .map_err(AdminError::from)
        .into()
}

pub(crate) fn pending_users_impl(
    state: &State,
    env: &impl Environment,
    args: Args,
) -> Result<Vec<candid::Principal>, Error> {
    authorize_controller(env)?;
    let count = paging::checked(args.count)?;
    Ok(pending(state, args.after, count))
}
