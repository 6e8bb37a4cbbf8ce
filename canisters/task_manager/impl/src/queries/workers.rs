use ic_cdk::query;

use crate::guards::small_arg;
use task_manager_api::workers::WorkersPage;
use task_manager_api::{AdminError, Error, PageArgs};

use crate::env::{CanisterEnv, Environment};
use crate::model::users::authorize_controller;
use crate::model::workers::worker_info;
use crate::queries::paging;
use crate::state::{read_state, State};

#[query(guard = "small_arg")]
fn workers(page: task_manager_api::workers::Args) -> task_manager_api::workers::Response {
    read_state(|state| workers_impl(state, &CanisterEnv, page))
        .map_err(AdminError::from)
        .into()
}

pub(crate) fn workers_impl(
    state: &State,
    env: &impl Environment,
    page: PageArgs,
) -> Result<WorkersPage, Error> {
    authorize_controller(env)?;
    let length = paging::checked(page.length)?;
    let workers = paging::page(state.workers.iter(), page.start, length)
        .into_iter()
        .map(|e| worker_info(*e.key(), &e.value()))
        .collect();
    Ok(WorkersPage {
        workers,
        total: state.workers.len(),
    })
}
