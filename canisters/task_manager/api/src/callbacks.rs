//! What the task manager answers its workers' reports (`job_progress`,
//! `job_finished`, `worker_ready`): an audience of its own, so that a new
//! user or admin error never changes what a worker decodes.

use candid::{CandidType, Deserialize, Principal};

/// Why the task manager refused a worker's report. A refused report is
/// final: the worker must not send it again.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum CallbackError {
    /// The caller is not one of the task manager's workers.
    NotAWorker { caller: Principal },
    /// The caller is a worker, but not the driver of the job's pipeline.
    NotTheDriver { job: u64 },
    /// No such job (or it expired).
    UnknownJob { job: u64 },
    /// The job is not running (it ended, failed or timed out already).
    JobNotRunning { job: u64 },
    /// The caller does not hold what the report is about.
    NotAssigned { reason: String },
    /// The report is inconsistent (token counts beyond the job's bounds).
    InvalidReport { reason: String },
    /// Any other refusal.
    GenericError { code: u32, message: String },
}

worker_api::named_result!(
    /// The answer to a worker's report.
    CallbackResult,
    (),
    CallbackError
);
