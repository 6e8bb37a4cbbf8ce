//! `cancel_job` (update; the task manager): asks the driver to end a job
//! before its next step; the job then ends as `Cancelled` (reported by
//! `job_finished`). A cancel for a job the worker does not know yet is
//! remembered for a while (see `protocol::CANCEL_MEMORY_SECS`): a `run_job`
//! of that id arriving later ends at once, cancelled. A cancel for a job
//! that has ended already does nothing.

/// The job id.
pub type Args = u64;

/// `Ok` once the request is taken (see above), or why it was refused.
pub type Response = crate::AckResult;
