use ic_cdk::update;

use crate::guards::{authorize, Audience, Caller};
use crate::state::{mutate_state, State};

/// Returns nothing (`()` in candid): sent one-way.
#[update]
fn end_job(job: worker_api::end_job::Args) {
    let who = Caller::current();
    mutate_state(|s| end_job_impl(s, who, job));
}

/// Drops a job's caches; from anyone but the pipeline's driver, the task
/// manager or a controller, nothing happens.
pub(crate) fn end_job_impl(state: &mut State, who: Caller, job: u64) {
    if authorize(state, who, Audience::DriverOrManager).is_ok() {
        if let Some(runtime) = state.runtime.as_mut() {
            runtime.peer_jobs.remove(&job);
        }
    }
}
