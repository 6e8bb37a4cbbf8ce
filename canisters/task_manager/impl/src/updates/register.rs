use ic_cdk::update;
use task_manager_api::register::Response;
use task_manager_api::Error;

use crate::env::{CanisterEnv, Environment};
use crate::model::rate_limit::TokenBucket;
use crate::model::users::profile;
use crate::state::{mutate_state, State, UserRecord};

#[update]
fn register() -> task_manager_api::register::Response {
    mutate_state(|state| register_impl(state, &CanisterEnv))
}

pub(crate) fn register_impl(state: &mut State, env: &impl Environment) -> Response {
    let caller = env.caller();
    if caller == candid::Principal::anonymous() {
        return Err(Error::AnonymousCaller);
    }
    let now = env.now();
    if let Some(record) = state.users.get(&caller) {
        if record.banned {
            return Err(Error::Banned);
        }
        return Ok(profile(state, caller, &record, now));
    }
    let record = UserRecord {
        registered_at_ns: now,
        banned: false,
        quota: None,
        bucket: TokenBucket::full(&state.config().default_quota, now),
    };
    state.users.insert(caller, record.clone());
    Ok(profile(state, caller, &record, now))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::test::{user, TestEnv};
    use crate::model::users::reserve_tokens;

    #[test]
    fn registers_once_with_a_full_bucket() {
        let mut state = State::in_memory();
        let mut env = TestEnv::new();
        let first = register_impl(&mut state, env.as_caller(user(1))).unwrap();
        assert_eq!(first.principal, user(1));
        assert_eq!(first.tokens_available, first.quota.capacity);
        assert!(!first.quota_is_override);

        // Idempotent: the same profile, the bucket untouched by a re-register.
        reserve_tokens(&mut state, user(1), env.now, 5).unwrap();
        env.now += 1;
        let again = register_impl(&mut state, &env).unwrap();
        assert_eq!(again.registered_at_ns, first.registered_at_ns);
        assert_eq!(again.tokens_available, first.quota.capacity - 5);
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
