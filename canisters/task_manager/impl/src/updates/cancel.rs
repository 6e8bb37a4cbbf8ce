use ic_cdk::update;

use crate::guards::small_arg;
use task_manager_api::{Error, JobInfo, UserError};

use crate::dispatch;
use crate::env::{CanisterEnv, Environment};
use crate::model::jobs;
use crate::state::{mutate_state, State};

#[update(guard = "small_arg")]
fn cancel(id: task_manager_api::cancel::Args) -> task_manager_api::cancel::Response {
    let result = mutate_state(|state| cancel_impl(state, &CanisterEnv, id));
    match result {
        Ok((info, driver)) => {
            if let Some(driver) = driver {
                dispatch::cancel_on(driver, id);
            }
            Ok(info)
        }
        Err(e) => Err(UserError::from(e)),
    }
    .into()
}

pub(crate) fn cancel_impl(
    state: &mut State,
    env: &impl Environment,
    id: u64,
) -> Result<(JobInfo, Option<candid::Principal>), Error> {
    let caller = env.caller();
    jobs::cancel(state, id, caller, env.is_controller(&caller), env.now())
}
