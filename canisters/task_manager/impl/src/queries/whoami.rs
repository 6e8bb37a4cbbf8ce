use ic_cdk::query;

use crate::guards::small_arg;
use task_manager_api::{Error, UserError};

use crate::env::{CanisterEnv, Environment};
use crate::model::users::{authorized_user, profile};
use crate::state::{read_state, State};

#[query(guard = "small_arg")]
fn whoami() -> task_manager_api::whoami::Response {
    read_state(|state| whoami_impl(state, &CanisterEnv))
        .map_err(UserError::from)
        .into()
}

pub(crate) fn whoami_impl(
    state: &State,
    env: &impl Environment,
) -> Result<task_manager_api::UserProfile, Error> {
    let caller = env.caller();
    let record = authorized_user(state, caller)?;
    Ok(profile(state, caller, &record, env.now()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::test::{user, TestEnv};
    use crate::model::users::reserve_tokens;
    use crate::updates::register::register_impl;
    use task_manager_api::Error;

    #[test]
    fn shows_the_balance_as_it_refills() {
        let mut state = State::in_memory();
        let mut env = TestEnv::new();
        assert_eq!(
            whoami_impl(&state, env.as_caller(user(1))),
            Err(Error::NotRegistered)
        );
        register_impl(&mut state, &env).unwrap();
        let quota = state.config().default_quota;
        let start = state.config().new_user_tokens;
        reserve_tokens(&mut state, user(1), env.now, start).unwrap();
        assert_eq!(whoami_impl(&state, &env).unwrap().tokens_available, 0);
        env.now += 3_000_000_000;
        assert_eq!(
            whoami_impl(&state, &env).unwrap().tokens_available,
            3 * quota.refill_per_sec
        );
    }
}
