use ic_cdk::query;

use crate::guards::small_arg;
use serde_bytes::ByteBuf;
use task_manager_api::model_manifest::Args;
use task_manager_api::{Error, UserError};

use crate::state::{read_state, State};

#[query(guard = "small_arg")]
fn model_manifest(
    model: task_manager_api::model_manifest::Args,
) -> task_manager_api::model_manifest::Response {
    read_state(|state| model_manifest_impl(state, model))
        .map_err(UserError::from)
        .into()
}

pub(crate) fn model_manifest_impl(state: &State, model: Args) -> Result<ByteBuf, Error> {
    state
        .models
        .get(&model)
        .map(|record| ByteBuf::from(record.manifest_json))
        .ok_or(Error::UnknownModel { model })
}
