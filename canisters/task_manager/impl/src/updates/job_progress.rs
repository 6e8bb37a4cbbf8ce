use ic_cdk::update;

use crate::env::{CanisterEnv, Environment};
use crate::model::jobs;
use crate::state::mutate_state;

/// From the job's driver only; anything else is ignored.
#[update]
fn job_progress(progress: task_manager_api::job_progress::Args) {
    let caller = CanisterEnv.caller();
    mutate_state(|state| jobs::record_progress(state, caller, progress));
}
