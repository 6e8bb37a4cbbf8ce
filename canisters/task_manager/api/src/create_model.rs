//! `create_model` (update, controllers): registers a model from its
//! `manifest.json` (validated: format version, architecture, config, stage
//! inputs/outputs, chunk tiling, hashes). Idempotent for the same
//! manifest; chunks are then sent with `upload_chunk`.

use candid::{CandidType, Deserialize};
use serde_bytes::ByteBuf;

use crate::{AdminError, ModelInfo};

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct CreateModelArgs {
    /// The bytes of `manifest.json`.
    pub manifest_json: ByteBuf,
}

pub type Args = CreateModelArgs;
worker_api::named_result!(CreateModelResult, ModelInfo, AdminError);
pub type Response = CreateModelResult;
