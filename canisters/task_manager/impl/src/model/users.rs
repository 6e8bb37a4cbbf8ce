//! Users: who may call, with which quota, and their buckets.

use candid::Principal;
use task_manager_api::{Error, Quota, UserProfile};

use crate::env::Environment;
use crate::state::{State, UserRecord};

/// The quota in force for `record`.
pub fn quota_of(state: &State, record: &UserRecord) -> Quota {
    record.quota.unwrap_or(state.config().default_quota)
}

/// The profile of `principal` as of `now`.
pub fn profile(state: &State, principal: Principal, record: &UserRecord, now: u64) -> UserProfile {
    let quota = quota_of(state, record);
    UserProfile {
        principal,
        registered_at_ns: record.registered_at_ns,
        banned: record.banned,
        quota,
        quota_is_override: record.quota.is_some(),
        tokens_available: record.bucket.available(&quota, now),
    }
}

/// The caller's record, when the caller may use the service: not
/// anonymous, registered, not banned.
pub fn authorized_user(state: &State, caller: Principal) -> Result<UserRecord, Error> {
    if caller == Principal::anonymous() {
        return Err(Error::AnonymousCaller);
    }
    let record = state.users.get(&caller).ok_or(Error::NotRegistered)?;
    if record.banned {
        return Err(Error::Banned);
    }
    Ok(record)
}

/// Controllers only.
pub fn authorize_controller(env: &impl Environment) -> Result<(), Error> {
    if env.is_controller(&env.caller()) {
        Ok(())
    } else {
        Err(Error::NotController)
    }
}

/// A registered user's record, for controller methods.
pub fn existing_user(state: &State, principal: Principal) -> Result<UserRecord, Error> {
    state
        .users
        .get(&principal)
        .ok_or(Error::UnknownUser { principal })
}

/// Takes `tokens` from `user`'s bucket (a generation request).
pub fn reserve_tokens(
    state: &mut State,
    user: Principal,
    now: u64,
    tokens: u64,
) -> Result<(), Error> {
    let mut record = authorized_user(state, user)?;
    let quota = quota_of(state, &record);
    record.bucket.reserve(&quota, now, tokens)?;
    state.users.insert(user, record);
    Ok(())
}

/// Gives back the part of a reservation a job did not use. A user who
/// has since been removed gets nothing back (there is no bucket).
pub fn refund_tokens(state: &mut State, user: Principal, now: u64, tokens: u64) {
    if let Some(mut record) = state.users.get(&user) {
        let quota = quota_of(state, &record);
        record.bucket.refund(&quota, now, tokens);
        state.users.insert(user, record);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::test::{user, TestEnv};
    use crate::updates::register::register_impl;

    #[test]
    fn reservations_and_refunds_follow_the_bucket() {
        let mut state = State::in_memory();
        let mut env = TestEnv::new();
        register_impl(&mut state, env.as_caller(user(1))).unwrap();
        let now = env.now;
        let capacity = state.config().default_quota.capacity;
        reserve_tokens(&mut state, user(1), now, capacity).unwrap();
        assert!(matches!(
            reserve_tokens(&mut state, user(1), now, 1),
            Err(Error::RateLimited { .. })
        ));
        refund_tokens(&mut state, user(1), now, 10);
        reserve_tokens(&mut state, user(1), now, 10).unwrap();
        assert_eq!(
            reserve_tokens(&mut state, user(2), now, 1),
            Err(Error::NotRegistered)
        );
        // Refunds to someone unknown change nothing.
        refund_tokens(&mut state, user(2), now, 10);
        assert!(!state.users.contains_key(&user(2)));
    }
}
