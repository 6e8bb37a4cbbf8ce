//! The timing and size contract between the task manager and its workers.
//!
//! Every call a worker makes is bounded-wait, with the deadline named
//! here; nothing a worker or the task manager awaits stays open for longer.
//! `run_job` and `load_stages` answer at once; what they start ends with a
//! report (`job_finished`, `worker_ready`) that the worker sends until the
//! task manager answers it (`Ok`, or a refusal, which is final), retrying a
//! failed call after [`REPORT_FIRST_RETRY_SECS`], doubling up to
//! [`REPORT_MAX_RETRY_SECS`], for at most [`REPORT_TTL_SECS`].

/// The IC's largest timeout of a bounded-wait call, seconds.
pub const MAX_CALL_TIMEOUT_SECS: u32 = 300;
/// The IC's limit on the payload of an inter-canister request or reply.
pub const MAX_INTER_CANISTER_PAYLOAD_BYTES: u64 = 2 * 1024 * 1024;
/// The IC's instruction limit of one update message.
pub const MAX_MESSAGE_INSTRUCTIONS: u64 = 40_000_000_000;

/// Deadline of the driver's `forward` to a peer. A peer that has not
/// answered by then fails the job with `PeerFailed`.
pub const FORWARD_TIMEOUT_SECS: u32 = 60;
/// Deadline of the driver's `step` (its call to itself, which waits for
/// the step's forwards: they get what is left of it, at most
/// [`FORWARD_TIMEOUT_SECS`] each).
pub const STEP_TIMEOUT_SECS: u32 = MAX_CALL_TIMEOUT_SECS;
/// Deadline of a `load_step` (the worker's call to itself).
pub const LOAD_STEP_TIMEOUT_SECS: u32 = MAX_CALL_TIMEOUT_SECS;
/// Deadline of a chunk pull from the task manager (`model_chunk`).
pub const CHUNK_TIMEOUT_SECS: u32 = 60;
/// Calls per chunk before the load fails, when the calls fail (a refusal
/// fails the load at once).
pub const CHUNK_PULL_ATTEMPTS: u32 = 3;
/// Deadline of a report (`job_finished`, `worker_ready`) and of a one-way
/// notice (`job_progress` to the task manager, `end_job` to peers).
pub const REPORT_TIMEOUT_SECS: u32 = 60;
/// Wait before the first retry of a report whose call failed.
pub const REPORT_FIRST_RETRY_SECS: u64 = 10;
/// The longest wait between two tries of a report (the wait doubles from
/// [`REPORT_FIRST_RETRY_SECS`] up to this).
pub const REPORT_MAX_RETRY_SECS: u64 = 300;
/// A report the task manager has not answered this long after the job or
/// load ended is dropped (and logged).
pub const REPORT_TTL_SECS: u64 = 3600;
/// Reports a worker keeps at most; `run_job` is refused
/// (`TooManyJobs`) rather than accepting a job it could not report.
pub const MAX_OUTBOX: usize = 128;

/// Jobs a driver runs at once.
pub const MAX_RUNNING_JOBS: usize = 16;
/// Jobs whose KV caches a downstream peer holds at once.
pub const MAX_PEER_JOBS: usize = 32;
/// A peer drops a job's KV caches when no step has touched them for this
/// long, even if `end_job` never comes (the driver's steps come at most
/// [`STEP_TIMEOUT_SECS`] apart while the job runs).
pub const PEER_CACHE_TTL_SECS: u64 = 600;
/// How long a driver remembers a `cancel_job` for a job it does not know
/// (yet): a `run_job` of that id within this time ends at once, cancelled.
pub const CANCEL_MEMORY_SECS: u64 = 600;
/// Such cancels remembered at most (the oldest is forgotten first).
pub const MAX_CANCEL_MEMORY: usize = 1024;
