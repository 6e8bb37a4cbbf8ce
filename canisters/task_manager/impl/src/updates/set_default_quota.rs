use ic_cdk::update;

use crate::guards::small_arg;
use task_manager_api::set_default_quota::Args;
use task_manager_api::{AdminError, Error};

use crate::env::{CanisterEnv, Environment};
use crate::model::rate_limit::validate_quota;
use crate::model::users::authorize_controller;
use crate::state::{mutate_state, State};

#[update(guard = "small_arg")]
fn set_default_quota(
    quota: task_manager_api::set_default_quota::Args,
) -> task_manager_api::set_default_quota::Response {
    mutate_state(|state| set_default_quota_impl(state, &CanisterEnv, quota))
        .map_err(AdminError::from)
        .into()
}

pub(crate) fn set_default_quota_impl(
    state: &mut State,
    env: &impl Environment,
    quota: Args,
) -> Result<(), Error> {
    authorize_controller(env)?;
    validate_quota(&quota)?;
    state.update_config(|config| config.default_quota = quota);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::test::{controller, user, TestEnv};
    use crate::queries::whoami::whoami_impl;
    use crate::updates::register::register_impl;
    use task_manager_api::{Error, Quota};

    #[test]
    fn controllers_change_the_default_for_users_without_override() {
        let mut state = State::in_memory();
        let mut env = TestEnv::new();
        register_impl(&mut state, env.as_caller(user(1))).unwrap();
        let quota = Quota {
            capacity: 10,
            refill_per_sec: 1,
        };
        assert_eq!(
            set_default_quota_impl(&mut state, &env, quota),
            Err(Error::NotController)
        );
        let bad = Quota {
            capacity: 0,
            refill_per_sec: 0,
        };
        env.as_caller(controller());
        assert!(matches!(
            set_default_quota_impl(&mut state, &env, bad),
            Err(Error::InvalidQuota { .. })
        ));
        set_default_quota_impl(&mut state, &env, quota).unwrap();
        let profile = whoami_impl(&state, env.as_caller(user(1))).unwrap();
        assert_eq!(profile.quota, quota);
        // The full old bucket is capped at the new capacity.
        assert_eq!(profile.tokens_available, 10);
    }
}
