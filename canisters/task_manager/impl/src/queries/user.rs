use ic_cdk::query;

use crate::guards::small_arg;
use task_manager_api::user::Args;
use task_manager_api::{AdminError, Error};

use crate::env::{CanisterEnv, Environment};
use crate::model::users::{authorize_controller, existing_user, profile};
use crate::state::{read_state, State};

#[query(guard = "small_arg")]
fn user(principal: task_manager_api::user::Args) -> task_manager_api::user::Response {
    read_state(|state| user_impl(state, &CanisterEnv, principal))
        .map_err(AdminError::from)
        .into()
}

pub(crate) fn user_impl(
    state: &State,
    env: &impl Environment,
    principal: Args,
) -> Result<task_manager_api::UserProfile, Error> {
    authorize_controller(env)?;
    let record = existing_user(state, principal)?;
    Ok(profile(state, principal, &record, env.now()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::test::{controller, user, TestEnv};
    use crate::updates::register::register_impl;
    use task_manager_api::Error;

    #[test]
    fn controllers_see_any_user() {
        let mut state = State::in_memory();
        let mut env = TestEnv::new();
        register_impl(&mut state, env.as_caller(user(1))).unwrap();
        assert_eq!(user_impl(&state, &env, user(1)), Err(Error::NotController));
        env.as_caller(controller());
        assert_eq!(user_impl(&state, &env, user(1)).unwrap().principal, user(1));
        assert_eq!(
            user_impl(&state, &env, user(2)),
            Err(Error::UnknownUser { principal: user(2) })
        );
    }
}
