//! `models` (query, anyone): the models in the registry, by name, a page
//! at a time.

use candid::{CandidType, Deserialize};

use crate::{ModelInfo, PageArgs, UserError};

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ModelsPage {
    pub models: Vec<ModelInfo>,
    /// Models in the registry.
    pub total: u64,
}

pub type Args = PageArgs;
worker_api::named_result!(ModelsResult, ModelsPage, UserError);
pub type Response = ModelsResult;
