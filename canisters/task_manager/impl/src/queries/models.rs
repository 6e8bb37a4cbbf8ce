use ic_cdk::query;

use crate::guards::small_arg;
use task_manager_api::models::ModelsPage;
use task_manager_api::{Error, PageArgs, UserError};

use crate::model::registry;
use crate::queries::paging;
use crate::state::{read_state, State};

#[query(guard = "small_arg")]
fn models(page: task_manager_api::models::Args) -> task_manager_api::models::Response {
    read_state(|state| models_impl(state, page))
        .map_err(UserError::from)
        .into()
}

pub(crate) fn models_impl(state: &State, page: PageArgs) -> Result<ModelsPage, Error> {
    let length = paging::checked(page.length)?;
    let models = paging::page(state.models.keys(), page.start, length)
        .into_iter()
        .map(|name| registry::model_info(state, &name))
        .collect::<Result<_, _>>()?;
    Ok(ModelsPage {
        models,
        total: state.models.len(),
    })
}
