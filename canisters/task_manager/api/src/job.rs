//! `job` (query, the job's owner or a controller): a job's status and the
//! text so far (streaming by polling). With `from_token`, only the text
//! and tokens after that many generated tokens: a client that polls passes
//! the `generated_tokens` it has seen and receives only what is new.

use candid::{CandidType, Deserialize};

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct JobArgs {
    pub job: u64,
    pub from_token: Option<u32>,
}

pub type Args = JobArgs;
pub type Response = crate::results::JobResult;
