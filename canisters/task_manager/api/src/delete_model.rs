//! `delete_model` (update, controllers): removes a model and its chunks.

use crate::Error;

/// The model's name.
pub type Args = String;
pub type Response = Result<(), Error>;
