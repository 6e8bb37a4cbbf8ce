use ic_cdk::update;

use crate::guards::small_arg;
use task_manager_api::{Error, UserError, UserProfile};

use crate::env::{CanisterEnv, Environment};
use crate::model::users;
use crate::state::{mutate_state, State};

/// Under the controller's registration policy (see
/// [`users::register`]).
#[update(guard = "small_arg")]
fn register() -> task_manager_api::register::Response {
    mutate_state(|state| register_impl(state, &CanisterEnv))
        .map_err(UserError::from)
        .into()
}

pub(crate) fn register_impl(
    state: &mut State,
    env: &impl Environment,
) -> Result<UserProfile, Error> {
    users::register(state, env.caller(), env.now())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::test::{user, TestEnv};
    use crate::model::users::reserve_tokens;

    #[test]
    fn registers_once_with_the_configured_tokens() {
        let mut state = State::in_memory();
        let mut env = TestEnv::new();
        let first = register_impl(&mut state, env.as_caller(user(1))).unwrap();
        assert_eq!(first.principal, user(1));
        assert_eq!(first.tokens_available, state.config().new_user_tokens);
        assert!(first.tokens_available < first.quota.capacity);
        assert!(!first.quota_is_override);

        // Idempotent: the same profile, the bucket untouched by a re-register.
        reserve_tokens(&mut state, user(1), env.now, 5).unwrap();
        let again = register_impl(&mut state, &env).unwrap();
        assert_eq!(again.registered_at_ns, first.registered_at_ns);
        assert_eq!(again.tokens_available, first.tokens_available - 5);
        assert_eq!(state.users.len(), 1);
    }

    #[test]
    fn anonymous_and_banned_callers_are_refused() {
        let mut state = State::in_memory();
        let mut env = TestEnv::new();
        assert_eq!(
            register_impl(&mut state, env.as_caller(candid::Principal::anonymous())),
            Err(Error::AnonymousCaller)
        );
        assert!(state.users.is_empty());
        register_impl(&mut state, env.as_caller(user(3))).unwrap();
        let mut record = state.users.get(&user(3)).unwrap();
        record.banned = true;
        state.users.insert(user(3), record);
        assert_eq!(register_impl(&mut state, &env), Err(Error::Banned));
    }
}
