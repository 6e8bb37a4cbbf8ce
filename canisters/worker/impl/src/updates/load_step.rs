use ic_cdk::update;

use crate::guards::{authorize, Audience, Caller};
use crate::model::load;
use crate::state::{mutate_state, State};

#[update]
fn load_step(epoch: worker_api::load_step::Args) -> worker_api::load_step::Response {
    let who = Caller::current();
    let result = mutate_state(|s| load_step_impl(s, who, epoch));
    let used = ic_cdk::api::performance_counter(0);
    mutate_state(|s| load::count_build_message(s, used));
    result.into()
}

pub(crate) fn load_step_impl(
    state: &mut State,
    who: Caller,
    epoch: u64,
) -> Result<bool, worker_api::WorkerError> {
    authorize(state, who, Audience::SelfOnly)?;
    load::build_step(state, epoch)
}
