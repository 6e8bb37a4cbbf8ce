use ic_cdk::query;

use crate::guards::small_arg;
use task_manager_api::my_jobs::{Args, MAX_COUNT};
use task_manager_api::{Error, JobInfo, UserError};

use crate::env::{CanisterEnv, Environment};
use crate::model::jobs;
use crate::model::users::authorized_user;
use crate::state::{read_state, State};

#[query(guard = "small_arg")]
fn my_jobs(args: task_manager_api::my_jobs::Args) -> task_manager_api::my_jobs::Response {
    read_state(|state| my_jobs_impl(state, &CanisterEnv, args))
        .map_err(UserError::from)
        .into()
}

pub(crate) fn my_jobs_impl(
    state: &State,
    env: &impl Environment,
    args: Args,
) -> Result<Vec<JobInfo>, Error> {
    let caller = env.caller();
    authorized_user(state, caller)?;
    if args.count == 0 || args.count > MAX_COUNT {
        return Err(Error::InvalidRequest {
            reason: format!("count must be 1 to {MAX_COUNT}, found {}", args.count),
        });
    }
    Ok(jobs::my_jobs(
        state,
        caller,
        args.before,
        args.count as usize,
    ))
}
