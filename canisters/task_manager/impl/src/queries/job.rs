use ic_cdk::query;

use crate::guards::small_arg;
use task_manager_api::job::Args;
use task_manager_api::{Error, JobInfo, UserError};

use crate::env::{CanisterEnv, Environment};
use crate::model::jobs;
use crate::state::{read_state, State};

#[query(guard = "small_arg")]
fn job(args: task_manager_api::job::Args) -> task_manager_api::job::Response {
    read_state(|state| job_impl(state, &CanisterEnv, args))
        .map_err(UserError::from)
        .into()
}

/// The owner and controllers see a job.
pub(crate) fn job_impl(
    state: &State,
    env: &impl Environment,
    args: Args,
) -> Result<JobInfo, Error> {
    let caller = env.caller();
    let privileged = env.is_controller(&caller);
    jobs::job_for(
        state,
        args.job,
        caller,
        privileged,
        args.from_token.unwrap_or(0),
    )
}
