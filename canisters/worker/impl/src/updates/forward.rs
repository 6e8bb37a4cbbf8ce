use ic_cdk::update;
use worker_api::forward::{Args, ForwardOutput};

use crate::guards::{authorize, Audience, Caller};
use crate::state::{mutate_state, State};
use crate::tasks::peers;

#[update]
fn forward(args: worker_api::forward::Args) -> worker_api::forward::Response {
    let who = Caller::current();
    let now = ic_cdk::api::time();
    let result = mutate_state(|s| forward_impl(s, who, args, now));
    peers::schedule();
    result
        .map(|data| ForwardOutput {
            data,
            instructions: ic_cdk::api::performance_counter(0),
        })
        .into()
}

/// Runs the step on this worker's stages; only the pipeline's driver may
/// ask.
pub(crate) fn forward_impl(
    state: &mut State,
    who: Caller,
    args: Args,
    now: u64,
) -> Result<worker_api::StageData, worker_api::WorkerError> {
    authorize(state, who, Audience::Driver)?;
    let runtime = state
        .runtime
        .as_mut()
        .ok_or(worker_api::WorkerError::NotLoaded)?;
    runtime.forward(args.job, args.start_position, args.data, now)
}
