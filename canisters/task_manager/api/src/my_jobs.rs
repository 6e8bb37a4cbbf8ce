//! `my_jobs` (query, registered users): the caller's jobs, newest first,
//! to recover a chat after a reload. Page with `before`: the smallest id
//! of the previous page.

use candid::{CandidType, Deserialize};

use crate::{JobInfo, UserError};

/// Most jobs one page holds.
pub const MAX_COUNT: u32 = 100;

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct MyJobsArgs {
    /// Jobs with smaller ids than this; absent: from the newest.
    pub before: Option<u64>,
    /// At most [`MAX_COUNT`].
    pub count: u32,
}

pub type Args = MyJobsArgs;
worker_api::named_result!(MyJobsResult, Vec<JobInfo>, UserError);
pub type Response = MyJobsResult;
