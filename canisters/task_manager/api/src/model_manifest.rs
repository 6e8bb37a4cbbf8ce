//! `model_manifest` (query, anyone): a model's `manifest.json`, for
//! browsers and canisters that run the model themselves.

use serde_bytes::ByteBuf;

use crate::Error;

/// The model's name.
pub type Args = String;
pub type Response = Result<ByteBuf, Error>;
