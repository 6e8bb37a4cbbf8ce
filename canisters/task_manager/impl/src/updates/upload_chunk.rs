use ic_cdk::update;

use crate::guards::chunk_arg;
use task_manager_api::upload_chunk::{Args, UploadProgress};
use task_manager_api::{AdminError, Error};

use crate::env::{CanisterEnv, Environment};
use crate::model::registry;
use crate::model::users::authorize_controller;
use crate::state::{mutate_state, State};

#[update(guard = "chunk_arg")]
fn upload_chunk(
    args: task_manager_api::upload_chunk::Args,
) -> task_manager_api::upload_chunk::Response {
    mutate_state(|state| upload_chunk_impl(state, &CanisterEnv, args))
        .map_err(AdminError::from)
        .into()
}

pub(crate) fn upload_chunk_impl(
    state: &mut State,
    env: &impl Environment,
    args: Args,
) -> Result<UploadProgress, Error> {
    authorize_controller(env)?;
    let (chunks_present, chunks_total) =
        registry::upload_chunk(state, &args.chunk, args.bytes.into_vec())?;
    Ok(UploadProgress {
        chunks_present,
        chunks_total,
    })
}
