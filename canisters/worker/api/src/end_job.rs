//! `end_job` (update; pipeline peers): drops a job's KV caches (sent
//! one-way by the driver when the job ends).

/// The job id.
pub type Args = u64;
pub type Response = ();
