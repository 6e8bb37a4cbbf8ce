//! `delete_model` (update, controllers): removes a model and its chunks.

pub type Args = String;
pub type Response = crate::results::AdminResult;
