//! Query endpoints, one file each.

pub mod config;
pub mod job;
pub mod missing_chunks;
pub mod model_chunk;
pub mod model_manifest;
pub mod models;
pub mod my_jobs;
pub mod paging;
pub mod pending_users;
pub mod pipelines;
pub mod user;
pub mod whoami;
pub mod workers;
