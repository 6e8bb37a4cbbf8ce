//! `pipelines` (query, anyone): the pipelines serving models, by id, a
//! page at a time.

use candid::{CandidType, Deserialize};

use crate::{PageArgs, PipelineInfo, UserError};

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct PipelinesPage {
    pub pipelines: Vec<PipelineInfo>,
    pub total: u64,
}

pub type Args = PageArgs;
worker_api::named_result!(PipelinesResult, PipelinesPage, UserError);
pub type Response = PipelinesResult;
