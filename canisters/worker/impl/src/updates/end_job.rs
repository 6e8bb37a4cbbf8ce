use ic_cdk::update;

use crate::guards::{authorize, Audience, Caller};
use crate::state::{mutate_state, State};

#[update]
fn end_job(job: worker_api::end_job::Args) -> worker_api::end_job::Response {
    let who = Caller::current();
    mutate_state(|s| end_job_impl(s, who, job));
}

/// Drops a job's caches; from anyone else, nothing happens.
pub(crate) fn end_job_impl(state: &mut State, who: Caller, job: u64) {
    if authorize(state, who, Audience::Peers).is_ok() {
        if let Some(runtime) = state.runtime.as_mut() {
            runtime.peer_jobs.remove(&job);
        }
    }
}
