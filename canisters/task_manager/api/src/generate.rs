//! `generate` (update, registered users): queues a generation and returns
//! its job id. `max_new_tokens` is reserved from the caller's bucket
//! (`RateLimited` when it holds too few); poll `job` for the text.

use crate::{Error, GenerateRequest};

pub type Args = GenerateRequest;
/// The job id.
pub type Response = Result<u64, Error>;
