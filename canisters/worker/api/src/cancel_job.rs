//! `cancel_job` (update; the task manager): asks the driver to end a job
//! before its next step; `run_job` then replies with `Cancelled`.

use crate::WorkerError;

/// The job id.
pub type Args = u64;
pub type Response = Result<(), WorkerError>;
