//! `job_progress` (update; the driver worker of the job): the
//! text of a running job so far, after each step. Stale or out-of-order
//! reports are ignored.

use candid::{CandidType, Deserialize};

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct JobProgress {
    pub job: u64,
    pub text: String,
    pub generated_tokens: u32,
    pub prompt_tokens: u32,
}

pub type Args = JobProgress;
pub type Response = crate::callbacks::CallbackResult;
