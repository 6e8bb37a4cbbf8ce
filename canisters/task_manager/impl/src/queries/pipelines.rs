use ic_cdk::query;

use crate::model::jobs;
use crate::state::read_state;

#[query]
fn pipelines() -> task_manager_api::pipelines::Response {
    read_state(|state| Ok(jobs::pipelines(state)))
}
