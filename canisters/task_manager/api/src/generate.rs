//! `generate` (update, registered users): queues a generation and returns
//! its job id. `max_new_tokens` is reserved from the caller's bucket
//! (`RateLimited` when it holds too few); poll `job` for the text.

use crate::{GenerateRequest, UserError};

pub type Args = GenerateRequest;
worker_api::named_result!(GenerateResult, u64, UserError);
pub type Response = GenerateResult;
