use ic_cdk::update;

use crate::env::CanisterEnv;
use crate::state::mutate_state;
use crate::updates::ban_user::set_banned;

#[update]
fn unban_user(
    principal: task_manager_api::unban_user::Args,
) -> task_manager_api::unban_user::Response {
    mutate_state(|state| set_banned(state, &CanisterEnv, principal, false))
}
