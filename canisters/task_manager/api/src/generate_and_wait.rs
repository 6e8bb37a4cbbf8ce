//! `generate_and_wait` (update, registered users; meant for canisters):
//! like `generate`, but replies when the job has ended, with the job.

use crate::GenerateRequest;

pub type Args = GenerateRequest;
pub type Response = crate::results::JobResult;
