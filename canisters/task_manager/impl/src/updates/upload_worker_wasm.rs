use ic_cdk::update;

use crate::guards::wasm_piece_arg;
use task_manager_api::upload_worker_wasm::Args;
use task_manager_api::{AdminError, Error};

use crate::env::{CanisterEnv, Environment};
use crate::model::spawn;
use crate::model::users::authorize_controller;
use crate::state::{mutate_state, State};

#[update(guard = "wasm_piece_arg")]
fn upload_worker_wasm(
    args: task_manager_api::upload_worker_wasm::Args,
) -> task_manager_api::upload_worker_wasm::Response {
    mutate_state(|state| upload_worker_wasm_impl(state, &CanisterEnv, args))
        .map_err(AdminError::from)
        .into()
}

pub(crate) fn upload_worker_wasm_impl(
    state: &mut State,
    env: &impl Environment,
    args: Args,
) -> Result<task_manager_api::WasmInfo, Error> {
    authorize_controller(env)?;
    spawn::upload(state, args.offset, args.bytes.into_vec())
}
