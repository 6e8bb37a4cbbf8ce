use ic_cdk::update;

use crate::guards::small_arg;
use task_manager_api::AdminError;

use crate::env::CanisterEnv;
use crate::state::mutate_state;
use crate::updates::ban_user::set_banned;

#[update(guard = "small_arg")]
fn unban_user(
    principal: task_manager_api::unban_user::Args,
) -> task_manager_api::unban_user::Response {
    mutate_state(|state| set_banned(state, &CanisterEnv, principal, false))
        .map_err(AdminError::from)
        .into()
}
