use ic_cdk::query;

use crate::guards::small_arg;
use task_manager_api::missing_chunks::{Args, MissingChunksPage};
use task_manager_api::{AdminError, Error};

use crate::env::{CanisterEnv, Environment};
use crate::model::registry;
use crate::model::users::authorize_controller;
use crate::queries::paging;
use crate::state::{read_state, State};

#[query(guard = "small_arg")]
fn missing_chunks(
    args: task_manager_api::missing_chunks::Args,
) -> task_manager_api::missing_chunks::Response {
    read_state(|state| missing_chunks_impl(state, &CanisterEnv, args))
        .map_err(AdminError::from)
        .into()
}

pub(crate) fn missing_chunks_impl(
    state: &State,
    env: &impl Environment,
    args: Args,
) -> Result<MissingChunksPage, Error> {
    authorize_controller(env)?;
    let length = paging::checked(args.length)?;
    let missing = registry::missing_chunks(state, &args.model)?;
    Ok(MissingChunksPage {
        total: missing.len() as u64,
        chunks: paging::page(missing.into_iter(), args.start, length),
    })
}
