//! Update endpoints, one file each.

pub mod cancel_job;
pub mod end_job;
pub mod forward;
pub mod load_stages;
pub mod load_step;
pub mod run_job;
pub mod step;
