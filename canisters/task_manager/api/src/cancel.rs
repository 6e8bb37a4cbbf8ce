//! `cancel` (update, the job's owner or a controller): a queued job ends at
//! once; a running one before its next token. The unused reservation is
//! refunded.

pub type Args = u64;
pub type Response = crate::results::JobResult;
