use ic_cdk::update;
use worker_api::forward::{Args, ForwardOutput};

use crate::guards::{authorize, Audience, Caller};
use crate::state::{mutate_state, State};

#[update]
fn forward(args: worker_api::forward::Args) -> worker_api::forward::Response {
    let who = Caller::current();
    let result = mutate_state(|s| forward_impl(s, who, args));
    result.map(|data| ForwardOutput {
        data,
        instructions: ic_cdk::api::performance_counter(0),
    })
}

pub(crate) fn forward_impl(
    state: &mut State,
    who: Caller,
    args: Args,
) -> Result<worker_api::StageData, worker_api::WorkerError> {
    authorize(state, who, Audience::Peers)?;
    let runtime = state
        .runtime
        .as_mut()
        .ok_or(worker_api::WorkerError::NotLoaded)?;
    runtime.forward(args.job, args.start_position, args.data)
}
