//! `workers` (query, controllers): the workers and what they hold, by
//! principal, a page at a time.

use candid::{CandidType, Deserialize};

use crate::{AdminError, PageArgs, WorkerInfo};

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct WorkersPage {
    pub workers: Vec<WorkerInfo>,
    pub total: u64,
}

pub type Args = PageArgs;
worker_api::named_result!(WorkersResult, WorkersPage, AdminError);
pub type Response = WorkersResult;
