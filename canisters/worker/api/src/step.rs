//! `step` (update; the worker itself): one message of a job: the next
//! chunk of the prompt, or one generated token, through every stage of the
//! pipeline.

use candid::{CandidType, Deserialize};

use crate::WorkerError;

/// Where the job stands after the step.
#[derive(CandidType, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepReport {
    /// More steps to come.
    Continue,
    /// The job has ended (its outcome is kept for `run_job`).
    Finished,
}

/// The job id.
pub type Args = u64;
pub type Response = Result<StepReport, WorkerError>;
