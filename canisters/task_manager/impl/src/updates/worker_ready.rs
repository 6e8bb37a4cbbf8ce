use ic_cdk::update;

use crate::dispatch;
use crate::env::{CanisterEnv, Environment};
use crate::model::jobs;
use crate::state::mutate_state;

/// From a worker holding a stage of a pipeline: it reloaded (or failed
/// to). Anything else is ignored.
#[update]
fn worker_ready(args: task_manager_api::worker_ready::Args) {
    let caller = CanisterEnv.caller();
    let known = mutate_state(|state| {
        let assigned = state
            .workers
            .get(&caller)
            .is_some_and(|w| w.pipeline.is_some());
        if assigned {
            jobs::load_finished(state, caller, args.error.map_or(Ok(()), Err));
        }
        assigned
    });
    if known {
        dispatch::schedule();
    }
}
