//! `end_job` (update, no reply value; the pipeline's driver or the task
//! manager): drops a job's KV caches on a downstream peer (sent one-way by
//! the driver when the job ends). Peers also drop caches that no step has
//! touched for `protocol::PEER_CACHE_TTL_SECS`, so a lost `end_job` costs
//! memory for a bounded time only.

/// The job id.
pub type Args = u64;
/// Nothing: the method returns `()`.
pub type Response = ();
