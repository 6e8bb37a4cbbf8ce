use ic_cdk::query;

use crate::guards::small_arg;
use task_manager_api::pipelines::PipelinesPage;
use task_manager_api::{Error, PageArgs, UserError};

use crate::model::workers::pipeline_info;
use crate::queries::paging;
use crate::state::{read_state, State};

#[query(guard = "small_arg")]
fn pipelines(page: task_manager_api::pipelines::Args) -> task_manager_api::pipelines::Response {
    read_state(|state| pipelines_impl(state, page))
        .map_err(UserError::from)
        .into()
}

pub(crate) fn pipelines_impl(state: &State, page: PageArgs) -> Result<PipelinesPage, Error> {
    let length = paging::checked(page.length)?;
    let pipelines = paging::page(state.pipelines.iter(), page.start, length)
        .into_iter()
        .map(|e| pipeline_info(state, *e.key(), &e.value()))
        .collect();
    Ok(PipelinesPage {
        pipelines,
        total: state.pipelines.len(),
    })
}
