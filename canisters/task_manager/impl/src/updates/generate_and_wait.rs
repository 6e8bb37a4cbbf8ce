//! `generate_and_wait`: queues the job like `generate`, then answers when
//! it ends.
//!
//! The IC answers a call only from its own call context (its first
//! message or the callbacks of calls it made), so a waiter cannot be
//! answered from `job_finished`'s message. Each waiter instead keeps one
//! bounded-wait call to this canister's `wait_round` in flight and, when
//! it returns, reads its job's record, where `job_finished` wrote the end.
//! Waiters are counted per user (a cap) and each has a time limit; a
//! stopping canister rejects the round trip, which ends the wait (the job
//! goes on).

use candid::Principal;
use ic_cdk::call::Call;
use ic_cdk::update;

use crate::guards::generate_arg;
use task_manager_api::{Error, JobInfo, JobStatus, UserError};

use crate::dispatch;
use crate::env::{CanisterEnv, Environment};
use crate::model::jobs;
use crate::state::{mutate_state, read_state, State};
use crate::updates::generate::generate_impl;

/// Deadline of one round trip, seconds (it returns within a round or
/// two; the deadline only bounds a canister that cannot answer).
const ROUND_TRIP_TIMEOUT_SECS: u32 = 60;

#[update(guard = "generate_arg")]
async fn generate_and_wait(
    request: task_manager_api::generate_and_wait::Args,
) -> task_manager_api::generate_and_wait::Response {
    wait(request).await.map_err(UserError::from).into()
}

async fn wait(request: task_manager_api::generate::Args) -> Result<JobInfo, Error> {
    let env = CanisterEnv;
    let caller = env.caller();
    let job = mutate_state(|state| {
        take_waiter(state, caller)?;
        let job = generate_impl(state, &env, request);
        if job.is_err() {
            release_waiter(state, caller);
        }
        job
    })?;
    dispatch::schedule();
    let _slot = Waiter { user: caller };
    let timeout = read_state(|s| s.config().wait_timeout_secs).saturating_mul(1_000_000_000);
    let deadline = env.now().saturating_add(timeout);
    let me = env.canister_self();
    loop {
        let round = Call::bounded_wait(me, "wait_round")
            .change_timeout(ROUND_TRIP_TIMEOUT_SECS)
            .await;
        if round.is_err() {
            // The canister is stopping: the job goes on, the wait does not.
            return Err(Error::WaitInterrupted { job });
        }
        let info = read_state(|s| jobs::job_for(s, job, caller, true, 0))?;
        match info.status {
            JobStatus::Failed { reason } => return Err(Error::JobFailed { job, reason }),
            ref status if status.is_final() => return Ok(info),
            _ => {}
        }
        if ic_cdk::api::time() >= deadline {
            return Err(Error::WaitTimedOut { job });
        }
    }
}

/// Counts a waiter for `user`, within the configured cap.
pub(crate) fn take_waiter(state: &mut State, user: Principal) -> Result<(), Error> {
    let max = state.config().max_waiters_per_user;
    let n = state.waiters.entry(user).or_default();
    if *n >= max {
        return Err(Error::TooManyWaiters { max });
    }
    *n += 1;
    Ok(())
}

pub(crate) fn release_waiter(state: &mut State, user: Principal) {
    if let Some(n) = state.waiters.get_mut(&user) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            state.waiters.remove(&user);
        }
    }
}

/// Releases its user's waiter slot however the wait ends (a trap too).
struct Waiter {
    user: Principal,
}

impl Drop for Waiter {
    fn drop(&mut self) {
        let user = self.user;
        mutate_state(|s| release_waiter(s, user));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::test::user;

    #[test]
    fn waiters_are_capped_per_user() {
        let mut state = State::in_memory();
        let max = state.config().max_waiters_per_user;
        for _ in 0..max {
            take_waiter(&mut state, user(1)).unwrap();
        }
        assert_eq!(
            take_waiter(&mut state, user(1)),
            Err(Error::TooManyWaiters { max })
        );
        take_waiter(&mut state, user(2)).unwrap();
        release_waiter(&mut state, user(1));
        take_waiter(&mut state, user(1)).unwrap();
    }
}
