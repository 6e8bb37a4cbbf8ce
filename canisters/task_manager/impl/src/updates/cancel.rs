use ic_cdk::update;

use crate::dispatch;
use crate::env::{CanisterEnv, Environment};
use crate::model::jobs;
use crate::state::{mutate_state, State};

#[update]
fn cancel(id: task_manager_api::cancel::Args) -> task_manager_api::cancel::Response {
    let (info, driver) = mutate_state(|state| cancel_impl(state, &CanisterEnv, id))?;
    if let Some(driver) = driver {
        dispatch::cancel_on(driver, id);
    }
    Ok(info)
}

pub(crate) fn cancel_impl(
    state: &mut State,
    env: &impl Environment,
    id: u64,
) -> Result<(task_manager_api::JobInfo, Option<candid::Principal>), task_manager_api::Error> {
    let caller = env.caller();
    jobs::cancel(state, id, caller, env.is_controller(&caller), env.now())
}
