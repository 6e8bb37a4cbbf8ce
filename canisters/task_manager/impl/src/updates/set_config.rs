use ic_cdk::update;

use crate::guards::small_arg;
use task_manager_api::{AdminError, Config, ConfigUpdate, Error, RegistrationPolicy};

use crate::env::{CanisterEnv, Environment};
use crate::model::rate_limit::validate_quota;
use crate::model::users::authorize_controller;
use crate::state::{mutate_state, State};

#[update(guard = "small_arg")]
fn set_config(
    update: task_manager_api::set_config::Args,
) -> task_manager_api::set_config::Response {
    mutate_state(|state| set_config_impl(state, &CanisterEnv, update))
        .map_err(AdminError::from)
        .into()
}

pub(crate) fn set_config_impl(
    state: &mut State,
    env: &impl Environment,
    update: ConfigUpdate,
) -> Result<Config, Error> {
    authorize_controller(env)?;
    apply_config(state, update)
}

/// Checks every field first, then changes them all (or nothing).
pub(crate) fn apply_config(state: &mut State, u: ConfigUpdate) -> Result<Config, Error> {
    let invalid = |reason: String| Err(Error::InvalidRequest { reason });
    let mut c = state.config().clone();
    if let Some(q) = u.default_quota {
        validate_quota(&q)?;
        c.default_quota = q;
    }
    if let Some(Some(q)) = u.global_quota {
        validate_quota(&q)?;
    }
    if let Some(q) = u.global_quota {
        c.global_quota = q;
    }
    if let Some(r) = u.registration {
        if r == (RegistrationPolicy::Open { max_users: 0 }) {
            return invalid("max_users must be at least 1 (use AllowList to close)".into());
        }
        c.registration = r;
    }
    if let Some(n) = u.new_user_tokens {
        c.new_user_tokens = n;
    }
    for (name, value, max) in [
        ("max_jobs_per_user", u.max_jobs_per_user, 1_000),
        ("max_waiters_per_user", u.max_waiters_per_user, 100),
        (
            "max_finished_jobs_per_user",
            u.max_finished_jobs_per_user,
            10_000,
        ),
    ] {
        if value.is_some_and(|v| v == 0 || v > max) {
            return invalid(format!("{name} must be 1 to {max}"));
        }
    }
    c.max_jobs_per_user = u.max_jobs_per_user.unwrap_or(c.max_jobs_per_user);
    c.max_waiters_per_user = u.max_waiters_per_user.unwrap_or(c.max_waiters_per_user);
    c.max_finished_jobs_per_user = u
        .max_finished_jobs_per_user
        .unwrap_or(c.max_finished_jobs_per_user);
    const DAY: u64 = 24 * 60 * 60;
    for (name, value, min, max) in [
        ("wait_timeout_secs", u.wait_timeout_secs, 1, DAY),
        (
            "finished_job_retention_secs",
            u.finished_job_retention_secs,
            60,
            365 * DAY,
        ),
        ("queue_timeout_secs", u.queue_timeout_secs, 10, 7 * DAY),
        ("job_stall_timeout_secs", u.job_stall_timeout_secs, 10, DAY),
    ] {
        if value.is_some_and(|v| v < min || v > max) {
            return invalid(format!("{name} must be {min} to {max}"));
        }
    }
    c.wait_timeout_secs = u.wait_timeout_secs.unwrap_or(c.wait_timeout_secs);
    c.finished_job_retention_secs = u
        .finished_job_retention_secs
        .unwrap_or(c.finished_job_retention_secs);
    c.queue_timeout_secs = u.queue_timeout_secs.unwrap_or(c.queue_timeout_secs);
    c.job_stall_timeout_secs = u.job_stall_timeout_secs.unwrap_or(c.job_stall_timeout_secs);
    state.update_config(|config| *config = c.clone());
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::test::{user, TestEnv};

    #[test]
    fn controllers_change_settings_all_or_nothing() {
        let mut state = State::in_memory();
        let mut env = TestEnv::new();
        let before = state.config().clone();
        assert_eq!(
            set_config_impl(&mut state, env.as_caller(user(1)), ConfigUpdate::default()),
            Err(Error::NotController)
        );
        let controller = crate::env::test::controller();
        let bad = ConfigUpdate {
            max_jobs_per_user: Some(3),
            job_stall_timeout_secs: Some(0),
            ..Default::default()
        };
        assert!(set_config_impl(&mut state, env.as_caller(controller), bad).is_err());
        assert_eq!(state.config(), &before);
        let good = ConfigUpdate {
            registration: Some(RegistrationPolicy::Approval),
            max_jobs_per_user: Some(3),
            global_quota: Some(Some(task_manager_api::Quota {
                capacity: 100,
                refill_per_sec: 1,
            })),
            ..Default::default()
        };
        let after = set_config_impl(&mut state, &env, good).unwrap();
        assert_eq!(after.registration, RegistrationPolicy::Approval);
        assert_eq!(after.max_jobs_per_user, 3);
        assert!(after.global_quota.is_some());
        assert_eq!(state.config(), &after);
    }
}
