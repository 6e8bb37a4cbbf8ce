use ic_cdk::query;
use task_manager_api::models::Response;

use crate::model::registry;
use crate::state::{read_state, State};

#[query]
fn models() -> task_manager_api::models::Response {
    read_state(models_impl)
}

pub(crate) fn models_impl(state: &State) -> Response {
    state
        .models
        .keys()
        .map(|name| registry::model_info(state, &name))
        .collect()
}
