//! `pipelines` (query, anyone): the pipelines serving models.

use crate::{Error, PipelineInfo};

pub type Response = Result<Vec<PipelineInfo>, Error>;
