use candid::Principal;
use ic_cdk::update;

use crate::guards::small_arg;
use task_manager_api::worker_ready::WorkerReadyArgs;
use task_manager_api::CallbackError;

use crate::dispatch;
use crate::env::{CanisterEnv, Environment};
use crate::model::workers;
use crate::state::{mutate_state, State};

/// From a worker holding a stage of a pipeline: its load ended (after
/// `load_stages`, or a reload after its upgrade), ready or failed.
#[update(guard = "small_arg")]
fn worker_ready(
    args: task_manager_api::worker_ready::Args,
) -> task_manager_api::worker_ready::Response {
    let caller = CanisterEnv.caller();
    let result = mutate_state(|state| worker_ready_impl(state, caller, args));
    if result.is_ok() {
        dispatch::schedule();
    }
    result.into()
}

pub(crate) fn worker_ready_impl(
    state: &mut State,
    caller: Principal,
    args: WorkerReadyArgs,
) -> Result<(), CallbackError> {
    let w = state
        .workers
        .get(&caller)
        .ok_or(CallbackError::NotAWorker { caller })?;
    let (Some(pipeline), Some(stage)) = (w.pipeline, w.stage) else {
        return Err(CallbackError::NotAssigned {
            reason: format!("{caller} holds no stage"),
        });
    };
    let model = state.pipelines.get(&pipeline).map(|p| p.model);
    if model.as_deref() != Some(args.model.as_str()) || args.stages != [stage] {
        return Err(CallbackError::NotAssigned {
            reason: format!(
                "{caller} holds stage {stage} of pipeline {pipeline}, not stages {:?} of {:?}",
                args.stages, args.model
            ),
        });
    }
    workers::load_finished(state, caller, args.error.map_or(Ok(()), Err));
    Ok(())
}
