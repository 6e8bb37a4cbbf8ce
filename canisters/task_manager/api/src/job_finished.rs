//! `job_finished` (update; the driver worker of the job): a job that
//! `run_job` accepted has ended, normally or not. The task manager settles
//! the owner's reservation, frees the pipeline and starts the next job.
//!
//! The driver keeps sending this (bounded-wait calls, retried) until the
//! task manager answers at all: `Ok`, or a typed refusal, which is final.

use candid::{CandidType, Deserialize};
use worker_api::run_job::JobOutcome;
use worker_api::WorkerError;

/// How a job ended on its driver.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq)]
pub enum JobEnd {
    /// It ran to an end (including a cancel): what it produced.
    Done(JobOutcome),
    /// It failed after it was accepted.
    Failed(WorkerError),
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq)]
pub struct JobFinishedArgs {
    pub job: u64,
    pub end: JobEnd,
}

pub type Args = JobFinishedArgs;
pub type Response = crate::callbacks::CallbackResult;
