use ic_cdk::query;

use crate::state::read_state;

#[query]
fn config() -> task_manager_api::config::Response {
    read_state(|state| Ok(state.config().clone()))
}
