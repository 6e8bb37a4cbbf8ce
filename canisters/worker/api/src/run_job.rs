//! `run_job` (update; the task manager): runs one generation on the
//! pipeline this worker drives (it must hold stage 0). The prompt is
//! tokenized here; each following message of the job (a prefill chunk or
//! one generated token) is a call of the worker to itself (`step`), and each
//! step's text is reported to the task manager (`job_progress`). Replies
//! when the job ends: the output, or why it failed.

use candid::{CandidType, Deserialize};
use serde_bytes::ByteBuf;

use crate::{FinishReason, JobInstructions, Prompt, Sampling, WorkerError};

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq)]
pub struct RunJobArgs {
    /// The task manager's job id.
    pub job: u64,
    pub prompt: Prompt,
    pub sampling: Sampling,
    pub max_new_tokens: u32,
    pub stop_sequences: Vec<String>,
    /// 32 bytes: the seed of the sampler.
    pub seed: ByteBuf,
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct JobOutcome {
    pub text: String,
    /// Generated token ids (an end-of-sequence token included).
    pub tokens: Vec<u32>,
    pub prompt_tokens: u32,
    pub finish_reason: FinishReason,
    pub instructions: JobInstructions,
}

pub type Args = RunJobArgs;
pub type Response = Result<JobOutcome, WorkerError>;
