use ic_cdk::update;
use task_manager_api::deploy_model::Args;
use task_manager_api::Error;

use crate::dispatch;
use crate::env::{CanisterEnv, Environment};
use crate::model::jobs::{self, Deployment};
use crate::model::users::authorize_controller;
use crate::state::{mutate_state, State};

#[update]
fn deploy_model(
    args: task_manager_api::deploy_model::Args,
) -> task_manager_api::deploy_model::Response {
    let deployment = mutate_state(|state| deploy_model_impl(state, &CanisterEnv, args))?;
    dispatch::load(deployment.loads);
    Ok(deployment.pipelines)
}

pub(crate) fn deploy_model_impl(
    state: &mut State,
    env: &impl Environment,
    args: Args,
) -> Result<Deployment, Error> {
    authorize_controller(env)?;
    jobs::deploy_model(state, &args.model, args.pipelines)
}
