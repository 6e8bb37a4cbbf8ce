use ic_cdk::update;

use crate::guards::small_arg;
use task_manager_api::set_user_quota::Args;
use task_manager_api::{AdminError, Error};

use crate::env::{CanisterEnv, Environment};
use crate::model::rate_limit::validate_quota;
use crate::model::users::{authorize_controller, existing_user};
use crate::state::{mutate_state, State};

#[update(guard = "small_arg")]
fn set_user_quota(
    args: task_manager_api::set_user_quota::Args,
) -> task_manager_api::set_user_quota::Response {
    mutate_state(|state| set_user_quota_impl(state, &CanisterEnv, args))
        .map_err(AdminError::from)
        .into()
}

pub(crate) fn set_user_quota_impl(
    state: &mut State,
    env: &impl Environment,
    args: Args,
) -> Result<(), Error> {
    authorize_controller(env)?;
    if let Some(quota) = &args.quota {
        validate_quota(quota)?;
    }
    let mut record = existing_user(state, args.user)?;
    record.quota = args.quota.map(Into::into);
    state.users.insert(args.user, record);
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
    fn overrides_apply_to_one_user_and_can_be_lifted() {
        let mut state = State::in_memory();
        let mut env = TestEnv::new();
        register_impl(&mut state, env.as_caller(user(1))).unwrap();
        register_impl(&mut state, env.as_caller(user(2))).unwrap();
        let big = Quota {
            capacity: 50_000,
            refill_per_sec: 100,
        };
        let args = |quota| Args {
            user: user(1),
            quota,
        };
        assert_eq!(
            set_user_quota_impl(&mut state, &env, args(Some(big))),
            Err(Error::NotController)
        );
        env.as_caller(controller());
        set_user_quota_impl(&mut state, &env, args(Some(big))).unwrap();
        let one = whoami_impl(&state, env.as_caller(user(1))).unwrap();
        assert!(one.quota_is_override);
        assert_eq!(one.quota, big);
        let two = whoami_impl(&state, env.as_caller(user(2))).unwrap();
        assert!(!two.quota_is_override);

        env.as_caller(controller());
        set_user_quota_impl(&mut state, &env, args(None)).unwrap();
        assert!(
            !whoami_impl(&state, env.as_caller(user(1)))
                .unwrap()
                .quota_is_override
        );

        env.as_caller(controller());
        assert_eq!(
            set_user_quota_impl(
                &mut state,
                &env,
                Args {
                    user: user(9),
                    quota: None
                }
            ),
            Err(Error::UnknownUser { principal: user(9) })
        );
    }
}
