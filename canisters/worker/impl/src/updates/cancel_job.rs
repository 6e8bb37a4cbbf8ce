use ic_cdk::update;
use worker_api::cancel_job::Response;
use worker_api::WorkerError;

use crate::guards::{authorize, Audience, Caller};
use crate::state::{mutate_state, State};

#[update]
fn cancel_job(job: worker_api::cancel_job::Args) -> worker_api::cancel_job::Response {
    let who = Caller::current();
    mutate_state(|s| cancel_job_impl(s, who, job))
}

/// Marks the job cancelled: `run_job` ends it before its next step.
pub(crate) fn cancel_job_impl(state: &mut State, who: Caller, job: u64) -> Response {
    authorize(state, who, Audience::Manager)?;
    let running = state
        .jobs
        .get_mut(&job)
        .ok_or(WorkerError::UnknownJob { job })?;
    running.cancelled = true;
    Ok(())
}
