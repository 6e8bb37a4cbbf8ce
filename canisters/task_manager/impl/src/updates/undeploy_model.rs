use ic_cdk::update;

use crate::guards::small_arg;
use task_manager_api::undeploy_model::Args;
use task_manager_api::{AdminError, Error};

use crate::dispatch;
use crate::env::{CanisterEnv, Environment};
use crate::model::jobs;
use crate::model::users::authorize_controller;
use crate::model::workers::{self, Undeployment};
use crate::state::{mutate_state, State};

#[update(guard = "small_arg")]
fn undeploy_model(
    model: task_manager_api::undeploy_model::Args,
) -> task_manager_api::undeploy_model::Response {
    match mutate_state(|state| undeploy_model_impl(state, &CanisterEnv, model)) {
        Ok(undone) => {
            for (job, driver) in undone.running_jobs {
                dispatch::cancel_on(driver, job);
            }
            Ok(undone.pipelines)
        }
        Err(e) => Err(AdminError::from(e)),
    }
    .into()
}

pub(crate) fn undeploy_model_impl(
    state: &mut State,
    env: &impl Environment,
    model: Args,
) -> Result<Undeployment, Error> {
    authorize_controller(env)?;
    let undone = workers::undeploy_model(state, &model)?;
    jobs::end_undeployed(state, &undone.running_jobs, env.now());
    Ok(undone)
}
