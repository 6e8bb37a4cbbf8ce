use ic_cdk::update;

use crate::guards::{authorize, Audience, Caller};
use crate::model::outbox::ReportKey;
use crate::state::{mutate_state, State};

#[update]
fn cancel_job(job: worker_api::cancel_job::Args) -> worker_api::cancel_job::Response {
    let who = Caller::current();
    let now = ic_cdk::api::time();
    mutate_state(|s| cancel_job_impl(s, who, job, now)).into()
}

/// Marks a running job cancelled (it ends before its next step), does
/// nothing for one that has ended, and remembers a cancel for a job not
/// seen yet.
pub(crate) fn cancel_job_impl(
    state: &mut State,
    who: Caller,
    job: u64,
    now: u64,
) -> Result<(), worker_api::WorkerError> {
    authorize(state, who, Audience::Manager)?;
    if let Some(running) = state.jobs.get_mut(&job) {
        running.cancelled = true;
    } else if !state.outbox.contains(ReportKey::Job(job)) {
        state.early_cancels.remember(job, now);
    }
    Ok(())
}
