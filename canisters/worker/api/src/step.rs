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
    /// The job has ended (finished, or cancelled); its outcome is kept for
    /// the `job_finished` report.
    Finished,
}

/// The job id.
pub type Args = u64;

crate::named_result!(
    /// Where the job stands, or why the step failed.
    StepResult,
    StepReport,
    WorkerError
);

pub type Response = StepResult;
