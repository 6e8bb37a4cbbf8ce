//! `workers` (query, controllers): every worker and what it holds.

use crate::{Error, WorkerInfo};

pub type Response = Result<Vec<WorkerInfo>, Error>;
