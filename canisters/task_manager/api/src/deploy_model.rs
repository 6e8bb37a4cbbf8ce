//! `deploy_model` (update, controllers): places a fully uploaded model on
//! idle workers: `pipelines` pipelines of one worker per stage. Each worker
//! pulls and verifies its stage's chunks and loads it; `pipelines` shows
//! when they are ready. Earlier pipelines of the model stay.

use candid::{CandidType, Deserialize};

use crate::{Error, PipelineInfo};

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct DeployModelArgs {
    pub model: String,
    pub pipelines: u32,
}

pub type Args = DeployModelArgs;
pub type Response = Result<Vec<PipelineInfo>, Error>;
