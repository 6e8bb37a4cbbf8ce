//! `generate_and_wait` (update, registered users; meant for canisters):
//! like `generate`, but replies when the job has ended, with the job.

use crate::{Error, GenerateRequest, JobInfo};

pub type Args = GenerateRequest;
pub type Response = Result<JobInfo, Error>;
