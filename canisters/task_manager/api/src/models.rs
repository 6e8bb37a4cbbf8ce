//! `models` (query, anyone): every model in the registry.

use crate::{Error, ModelInfo};

pub type Response = Result<Vec<ModelInfo>, Error>;
