use ic_cdk::update;

use crate::guards::report_arg;

use crate::env::{CanisterEnv, Environment};
use crate::model::jobs;
use crate::state::mutate_state;

/// From the job's driver only; anything else gets its typed refusal.
#[update(guard = "report_arg")]
fn job_progress(
    progress: task_manager_api::job_progress::Args,
) -> task_manager_api::job_progress::Response {
    let env = CanisterEnv;
    let (caller, now) = (env.caller(), env.now());
    mutate_state(|state| jobs::record_progress(state, caller, progress, now)).into()
}
