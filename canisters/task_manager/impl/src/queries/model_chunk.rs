use ic_cdk::query;

use crate::guards::small_arg;
use serde_bytes::ByteBuf;
use task_manager_api::model_chunk::Args;
use task_manager_api::{Error, UserError};

use crate::model::registry;
use crate::state::{read_state, State};

#[query(guard = "small_arg")]
fn model_chunk(
    chunk: task_manager_api::model_chunk::Args,
) -> task_manager_api::model_chunk::Response {
    read_state(|state| model_chunk_impl(state, chunk))
        .map_err(UserError::from)
        .into()
}

pub(crate) fn model_chunk_impl(state: &State, chunk: Args) -> Result<ByteBuf, Error> {
    registry::chunk(state, &chunk).map(ByteBuf::from)
}
