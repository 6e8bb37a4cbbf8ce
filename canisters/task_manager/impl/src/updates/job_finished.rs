use ic_cdk::update;

use crate::guards::report_arg;

use crate::dispatch;
use crate::env::{CanisterEnv, Environment};
use crate::model::jobs;
use crate::state::mutate_state;

/// From the job's driver only: the job ended. Settles the owner's
/// reservation, frees the pipeline, starts the next job.
#[update(guard = "report_arg")]
fn job_finished(
    args: task_manager_api::job_finished::Args,
) -> task_manager_api::job_finished::Response {
    let env = CanisterEnv;
    let (caller, now) = (env.caller(), env.now());
    let result = mutate_state(|state| jobs::record_end(state, caller, args.job, args.end, now));
    if result.is_ok() {
        dispatch::schedule();
    }
    result.into()
}
