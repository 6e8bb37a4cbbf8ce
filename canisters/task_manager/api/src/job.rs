//! `job` (query, the job's owner or a controller): a job's status and the
//! text so far (streaming by polling).

use crate::{Error, JobInfo};

/// The job id.
pub type Args = u64;
pub type Response = Result<JobInfo, Error>;
