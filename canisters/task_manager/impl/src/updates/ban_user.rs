use ic_cdk::update;

use crate::guards::small_arg;
use task_manager_api::ban_user::Args;
use task_manager_api::{AdminError, Error};

use crate::env::{CanisterEnv, Environment};
use crate::model::users::{authorize_controller, existing_user};
use crate::state::{mutate_state, State};

#[update(guard = "small_arg")]
fn ban_user(principal: task_manager_api::ban_user::Args) -> task_manager_api::ban_user::Response {
    mutate_state(|state| set_banned(state, &CanisterEnv, principal, true))
        .map_err(AdminError::from)
        .into()
}

/// `ban_user` and `unban_user`.
pub(crate) fn set_banned(
    state: &mut State,
    env: &impl Environment,
    principal: Args,
    banned: bool,
) -> Result<(), Error> {
    authorize_controller(env)?;
    let mut record = existing_user(state, principal)?;
    record.banned = banned;
    state.users.insert(principal, record);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::test::{controller, user, TestEnv};
    use crate::model::users::reserve_tokens;
    use crate::queries::whoami::whoami_impl;
    use crate::updates::register::register_impl;
    use task_manager_api::Error;

    #[test]
    fn banned_users_are_refused_until_unbanned() {
        let mut state = State::in_memory();
        let mut env = TestEnv::new();
        register_impl(&mut state, env.as_caller(user(1))).unwrap();
        assert_eq!(
            set_banned(&mut state, &env, user(1), true),
            Err(Error::NotController)
        );
        env.as_caller(controller());
        set_banned(&mut state, &env, user(1), true).unwrap();
        assert_eq!(
            reserve_tokens(&mut state, user(1), env.now, 1),
            Err(Error::Banned)
        );
        assert_eq!(
            whoami_impl(&state, env.as_caller(user(1))),
            Err(Error::Banned)
        );
        env.as_caller(controller());
        set_banned(&mut state, &env, user(1), false).unwrap();
        reserve_tokens(&mut state, user(1), env.now, 1).unwrap();
        assert_eq!(
            set_banned(&mut state, &env, user(4), true),
            Err(Error::UnknownUser { principal: user(4) })
        );
    }
}
