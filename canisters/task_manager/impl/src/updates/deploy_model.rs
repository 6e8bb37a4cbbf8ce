use ic_cdk::update;

use crate::guards::small_arg;
use task_manager_api::deploy_model::Args;
use task_manager_api::{AdminError, Error};

use crate::dispatch;
use crate::env::{CanisterEnv, Environment};
use crate::model::users::authorize_controller;
use crate::model::workers::{self, Deployment};
use crate::state::{mutate_state, State};

#[update(guard = "small_arg")]
fn deploy_model(
    args: task_manager_api::deploy_model::Args,
) -> task_manager_api::deploy_model::Response {
    match mutate_state(|state| deploy_model_impl(state, &CanisterEnv, args)) {
        Ok(deployment) => {
            dispatch::load(deployment.loads);
            Ok(deployment.pipelines)
        }
        Err(e) => Err(AdminError::from(e)),
    }
    .into()
}

pub(crate) fn deploy_model_impl(
    state: &mut State,
    env: &impl Environment,
    args: Args,
) -> Result<Deployment, Error> {
    authorize_controller(env)?;
    workers::deploy_model(state, &args.model, args.pipelines)
}
