//! Query endpoints, one file each.

pub mod config;
pub mod missing_chunks;
pub mod model_chunk;
pub mod model_manifest;
pub mod models;
pub mod user;
pub mod whoami;
