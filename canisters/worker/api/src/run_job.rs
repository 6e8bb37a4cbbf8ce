//! `run_job` (update; the task manager): starts one generation on the
//! pipeline this worker drives (it must hold stage 0).
//!
//! The worker answers at once: `Ok` once the job is accepted (the caller
//! is the task manager, the request is valid, the prompt is tokenized and
//! the job is registered), or why it was refused. An accepted job then runs
//! on its own, each of its messages (a prefill chunk or one generated
//! token) a call of the worker to itself (`step`), each step's text
//! reported to the task manager (`job_progress`, one-way). However it ends
//! (finished, cancelled, failed, the worker stopping or upgraded), the
//! worker reports it exactly once by calling the task manager's
//! `job_finished`, retrying while that call fails (see [`crate::protocol`]).
//!
//! A job whose `cancel_job` arrived before its `run_job` is accepted and
//! ends at once, cancelled, without running anything.

use candid::{CandidType, Deserialize};
use serde_bytes::ByteBuf;

use crate::{FinishReason, JobInstructions, Prompt, Sampling};

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

/// What a job produced (reported by `job_finished`).
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct JobOutcome {
    pub text: String,
    /// Generated token ids (an end-of-sequence token included).
    pub tokens: Vec<u32>,
    /// Tokens of the prompt (all of them, also when a cancel stopped the
    /// job before they ran: `instructions.prefill_tokens` says how many
    /// ran).
    pub prompt_tokens: u32,
    pub finish_reason: FinishReason,
    pub instructions: JobInstructions,
}

pub type Args = RunJobArgs;
/// `Ok` once the request is taken (see above), or why it was refused.
pub type Response = crate::AckResult;
