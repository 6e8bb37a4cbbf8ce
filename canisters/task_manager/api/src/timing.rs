//! The task manager's clocks, as operators and tests rely on them.
//!
//! - A call to a worker waits at most [`WORKER_CALL_TIMEOUT_SECS`] (a
//!   bounded-wait call): a job whose driver does not accept it in that
//!   time fails, refunded, and its pipeline is marked unhealthy.
//! - Every [`HEALTH_CHECK_INTERVAL_SECS`] the watchdog sweeps stalled and
//!   expired jobs and asks each failed worker for its status. Passes never
//!   overlap: one that falls due while the last still waits on a worker
//!   skips.

/// Deadline of a call to a worker, seconds. Workers answer calls at once;
/// this bounds one that cannot.
pub const WORKER_CALL_TIMEOUT_SECS: u32 = 120;

/// Seconds between two health checks.
pub const HEALTH_CHECK_INTERVAL_SECS: u64 = 60;
