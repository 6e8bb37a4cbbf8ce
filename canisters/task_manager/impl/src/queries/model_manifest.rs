use ic_cdk::query;
use serde_bytes::ByteBuf;
use task_manager_api::model_manifest::{Args, Response};
use task_manager_api::Error;

use crate::state::{read_state, State};

#[query]
fn model_manifest(
    model: task_manager_api::model_manifest::Args,
) -> task_manager_api::model_manifest::Response {
    read_state(|state| model_manifest_impl(state, model))
}

pub(crate) fn model_manifest_impl(state: &State, model: Args) -> Response {
    state
        .models
        .get(&model)
        .map(|record| ByteBuf::from(record.manifest_json))
        .ok_or(Error::UnknownModel { model })
}
