//! `deploy_model` (update, controllers): places a fully uploaded model on
//! idle workers: `pipelines` pipelines of one worker per stage. Each worker
//! pulls and verifies its stage's chunks and loads it; `pipelines` shows
//! when they are ready. Earlier pipelines of the model stay.

use candid::{CandidType, Deserialize};

use crate::{AdminError, PipelineInfo};

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct DeployModelArgs {
    pub model: String,
    pub pipelines: u32,
}

pub type Args = DeployModelArgs;
worker_api::named_result!(DeployModelResult, Vec<PipelineInfo>, AdminError);
pub type Response = DeployModelResult;
