//! `model_manifest` (query, anyone): a model's `manifest.json`, for
//! browsers and canisters that run the model themselves.

pub type Args = String;
pub type Response = crate::results::BytesResult;
