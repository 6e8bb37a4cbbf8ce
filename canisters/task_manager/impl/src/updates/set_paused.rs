use ic_cdk::update;

use crate::guards::small_arg;
use task_manager_api::set_paused::Args;
use task_manager_api::{AdminError, Error};

use crate::env::{CanisterEnv, Environment};
use crate::model::users::authorize_controller;
use crate::state::{mutate_state, State};

#[update(guard = "small_arg")]
fn set_paused(
    paused: task_manager_api::set_paused::Args,
) -> task_manager_api::set_paused::Response {
    mutate_state(|state| set_paused_impl(state, &CanisterEnv, paused))
        .map_err(AdminError::from)
        .into()
}

pub(crate) fn set_paused_impl(
    state: &mut State,
    env: &impl Environment,
    paused: Args,
) -> Result<(), Error> {
    authorize_controller(env)?;
    state.update_config(|config| config.paused = paused);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::test::{controller, user, TestEnv};
    use task_manager_api::Error;

    #[test]
    fn only_controllers_pause() {
        let mut state = State::in_memory();
        let mut env = TestEnv::new();
        assert_eq!(
            set_paused_impl(&mut state, env.as_caller(user(1)), true),
            Err(Error::NotController)
        );
        assert!(!state.config().paused);
        set_paused_impl(&mut state, env.as_caller(controller()), true).unwrap();
        assert!(state.config().paused);
    }
}
