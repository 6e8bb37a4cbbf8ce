use ic_cdk::query;
use serde_bytes::ByteBuf;
use task_manager_api::model_chunk::{Args, Response};

use crate::model::registry;
use crate::state::{read_state, State};

#[query]
fn model_chunk(
    chunk: task_manager_api::model_chunk::Args,
) -> task_manager_api::model_chunk::Response {
    read_state(|state| model_chunk_impl(state, chunk))
}

pub(crate) fn model_chunk_impl(state: &State, chunk: Args) -> Response {
    registry::chunk(state, &chunk).map(ByteBuf::from)
}
