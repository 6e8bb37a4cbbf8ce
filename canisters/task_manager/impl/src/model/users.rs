//! Users: who may register (the controller's [`RegistrationPolicy`]), with
//! which quota, their buckets, and the service-wide bucket every
//! reservation also draws from.

use candid::Principal;
use task_manager_api::{Error, Quota, RegistrationPolicy, UserProfile};

use crate::env::Environment;
use crate::model::rate_limit::TokenBucket;
use crate::state::{GlobalBucket, State, UserRecord};

/// Most registration requests waiting for approval at once.
pub const MAX_PENDING_USERS: u64 = 10_000;
/// Most principals one `approve_users` call takes.
pub const MAX_APPROVALS_PER_CALL: usize = 500;

/// The quota in force for `record`.
pub fn quota_of(state: &State, record: &UserRecord) -> Quota {
    record
        .quota
        .map(Into::into)
        .unwrap_or(state.config().default_quota)
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
/// anonymous, registered (and approved), not banned.
pub fn authorized_user(state: &State, caller: Principal) -> Result<UserRecord, Error> {
    if caller == Principal::anonymous() {
        return Err(Error::AnonymousCaller);
    }
    let Some(record) = state.users.get(&caller) else {
        if state.pending_users.contains_key(&caller) {
            return Err(Error::ApprovalPending);
        }
        return Err(Error::NotRegistered);
    };
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

fn new_user(state: &State, now: u64, tokens: u64) -> UserRecord {
    let quota = state.config().default_quota;
    UserRecord {
        registered_at_ns: now,
        banned: false,
        quota: None,
        bucket: TokenBucket::with_tokens(&quota, tokens, now),
        active_jobs: Some(0),
    }
}

/// What `register` does for a caller, decided without changing anything
/// (`inspect_message` asks the same question).
#[derive(Debug, PartialEq)]
pub enum Registration {
    /// Already a user.
    Known(UserRecord),
    /// `Open`, with room: a new user.
    New,
    /// `Approval`: a request is recorded (or was already).
    Request,
}

/// How `register` would treat `caller` now, or why it refuses.
pub fn registration(state: &State, caller: Principal) -> Result<Registration, Error> {
    if caller == Principal::anonymous() {
        return Err(Error::AnonymousCaller);
    }
    if let Some(record) = state.users.get(&caller) {
        if record.banned {
            return Err(Error::Banned);
        }
        return Ok(Registration::Known(record));
    }
    match state.config().registration {
        RegistrationPolicy::Open { max_users } if state.users.len() >= max_users => {
            Err(Error::RegistrationClosed { max: max_users })
        }
        RegistrationPolicy::Open { .. } => Ok(Registration::New),
        RegistrationPolicy::Approval
            if !state.pending_users.contains_key(&caller)
                && state.pending_users.len() >= MAX_PENDING_USERS =>
        {
            Err(Error::RegistrationClosed {
                max: MAX_PENDING_USERS,
            })
        }
        RegistrationPolicy::Approval => Ok(Registration::Request),
        RegistrationPolicy::AllowList => Err(Error::NotAllowed),
    }
}

/// `register` under the configured policy: the caller's profile, or why
/// not (a request recorded under `Approval`). Nothing changes when it is
/// refused, but for that request.
pub fn register(state: &mut State, caller: Principal, now: u64) -> Result<UserProfile, Error> {
    match registration(state, caller)? {
        Registration::Known(record) => Ok(profile(state, caller, &record, now)),
        Registration::New => {
            let record = new_user(state, now, state.config().new_user_tokens);
            state.users.insert(caller, record.clone());
            Ok(profile(state, caller, &record, now))
        }
        Registration::Request => {
            if !state.pending_users.contains_key(&caller) {
                state.pending_users.insert(caller, now);
            }
            Err(Error::ApprovalPending)
        }
    }
}

/// Makes each principal an active user with a full bucket: approves a
/// pending request, or (allow list) registers the principal ahead of its
/// first call. Returns how many became users.
pub fn approve(state: &mut State, principals: &[Principal], now: u64) -> Result<u32, Error> {
    if principals.len() > MAX_APPROVALS_PER_CALL {
        return Err(Error::InvalidRequest {
            reason: format!(
                "at most {MAX_APPROVALS_PER_CALL} principals per call, found {}",
                principals.len()
            ),
        });
    }
    if principals.contains(&Principal::anonymous()) {
        return Err(Error::AnonymousCaller);
    }
    let capacity = state.config().default_quota.capacity;
    let mut approved = 0;
    for &p in principals {
        state.pending_users.remove(&p);
        if !state.users.contains_key(&p) {
            let record = new_user(state, now, capacity);
            state.users.insert(p, record);
            approved += 1;
        }
    }
    Ok(approved)
}

/// Registration requests waiting for approval, after `after` (paging).
pub fn pending(state: &State, after: Option<Principal>, count: usize) -> Vec<Principal> {
    match after {
        Some(a) => state
            .pending_users
            .range(a..)
            .map(|e| *e.key())
            .filter(|p| *p != a)
            .take(count)
            .collect(),
        None => state
            .pending_users
            .iter()
            .map(|e| *e.key())
            .take(count)
            .collect(),
    }
}

fn global(state: &State) -> Option<(Quota, TokenBucket)> {
    let quota = state.config().global_quota?;
    let now_bucket = state.global_bucket.get().0;
    Some((
        quota,
        now_bucket.unwrap_or_else(|| TokenBucket::full(&quota, 0)),
    ))
}

/// Takes `tokens` from `user`'s bucket and from the service's (a
/// generation request): from both or from neither.
pub fn reserve_tokens(
    state: &mut State,
    user: Principal,
    now: u64,
    tokens: u64,
) -> Result<(), Error> {
    let mut record = authorized_user(state, user)?;
    let quota = quota_of(state, &record);
    record.bucket.reserve(&quota, now, tokens)?;
    if let Some((gq, mut bucket)) = global(state) {
        bucket.reserve(&gq, now, tokens).map_err(|e| match e {
            Error::RateLimited {
                retry_after_secs, ..
            } => Error::ServiceBusy { retry_after_secs },
            _ => Error::ServiceBusy {
                retry_after_secs: u64::MAX,
            },
        })?;
        state.global_bucket.set(GlobalBucket(Some(bucket)));
    }
    state.users.insert(user, record);
    Ok(())
}

/// Settles a reservation of `reserved` tokens of which `used` were used:
/// the rest goes back (to the user and the service); more than reserved
/// is taken, down to an empty bucket. A user who has since been removed
/// gets nothing back (there is no bucket).
pub fn settle_tokens(state: &mut State, user: Principal, now: u64, reserved: u64, used: u64) {
    if let Some(mut record) = state.users.get(&user) {
        let quota = quota_of(state, &record);
        if used <= reserved {
            record.bucket.refund(&quota, now, reserved - used);
        } else {
            record.bucket.take_saturating(&quota, now, used - reserved);
        }
        state.users.insert(user, record);
    }
    if let Some((gq, mut bucket)) = global(state) {
        if used <= reserved {
            bucket.refund(&gq, now, reserved - used);
        } else {
            bucket.take_saturating(&gq, now, used - reserved);
        }
        state.global_bucket.set(GlobalBucket(Some(bucket)));
    }
}

/// Gives back a whole reservation.
pub fn refund_tokens(state: &mut State, user: Principal, now: u64, tokens: u64) {
    settle_tokens(state, user, now, tokens, 0);
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
        approve(&mut state, &[user(1)], env.now).unwrap();
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
        // Settling more than reserved empties the bucket, no further.
        settle_tokens(&mut state, user(1), now, 0, 1_000_000);
        let r = state.users.get(&user(1)).unwrap();
        assert_eq!(r.bucket.available(&quota_of(&state, &r), now), 0);
    }

    #[test]
    fn open_registration_is_capped_and_new_buckets_are_not_full() {
        let mut state = State::in_memory();
        state.update_config(|c| {
            c.registration = RegistrationPolicy::Open { max_users: 2 };
            c.new_user_tokens = 50;
        });
        let now = 1;
        let first = register(&mut state, user(1), now).unwrap();
        assert_eq!(first.tokens_available, 50);
        register(&mut state, user(2), now).unwrap();
        assert_eq!(
            register(&mut state, user(3), now),
            Err(Error::RegistrationClosed { max: 2 })
        );
        // Registered users are not refused by the cap.
        assert_eq!(register(&mut state, user(1), now).unwrap(), first);
        assert_eq!(state.users.len(), 2);
    }

    #[test]
    fn approval_records_requests_that_controllers_approve() {
        let mut state = State::in_memory();
        state.update_config(|c| c.registration = RegistrationPolicy::Approval);
        assert_eq!(
            register(&mut state, user(1), 1),
            Err(Error::ApprovalPending)
        );
        assert_eq!(
            register(&mut state, user(1), 1),
            Err(Error::ApprovalPending)
        );
        assert_eq!(
            reserve_tokens(&mut state, user(1), 1, 1),
            Err(Error::ApprovalPending)
        );
        assert_eq!(pending(&state, None, 10), vec![user(1)]);
        assert_eq!(approve(&mut state, &[user(1)], 2), Ok(1));
        assert!(pending(&state, None, 10).is_empty());
        let p = register(&mut state, user(1), 2).unwrap();
        assert_eq!(p.tokens_available, p.quota.capacity);
        reserve_tokens(&mut state, user(1), 2, 1).unwrap();
    }

    #[test]
    fn an_allow_list_lets_in_only_the_listed() {
        let mut state = State::in_memory();
        state.update_config(|c| c.registration = RegistrationPolicy::AllowList);
        assert_eq!(register(&mut state, user(1), 1), Err(Error::NotAllowed));
        assert!(state.users.is_empty());
        approve(&mut state, &[user(2)], 1).unwrap();
        assert!(register(&mut state, user(2), 1).is_ok());
        assert_eq!(
            approve(&mut state, &[Principal::anonymous()], 1),
            Err(Error::AnonymousCaller)
        );
    }

    #[test]
    fn the_global_bucket_limits_everyone_together() {
        let mut state = State::in_memory();
        state.update_config(|c| {
            c.global_quota = Some(Quota {
                capacity: 100,
                refill_per_sec: 10,
            });
            c.new_user_tokens = 1_000;
        });
        register(&mut state, user(1), 0).unwrap();
        register(&mut state, user(2), 0).unwrap();
        reserve_tokens(&mut state, user(1), 0, 80).unwrap();
        assert_eq!(
            reserve_tokens(&mut state, user(2), 0, 30),
            Err(Error::ServiceBusy {
                retry_after_secs: 1
            })
        );
        // Refused by the service: the user's bucket was not touched.
        let r = state.users.get(&user(2)).unwrap();
        assert_eq!(r.bucket.available(&quota_of(&state, &r), 0), 1_000);
        settle_tokens(&mut state, user(1), 0, 80, 50);
        reserve_tokens(&mut state, user(2), 0, 30).unwrap();
    }
}
