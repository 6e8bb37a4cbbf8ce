//! `cancel` (update, the job's owner or a controller): a queued job ends at
//! once; a running one before its next token. The unused reservation is
//! refunded.

use crate::{Error, JobInfo};

/// The job id.
pub type Args = u64;
pub type Response = Result<JobInfo, Error>;
