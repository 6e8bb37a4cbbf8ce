//! Query endpoints, one file each.

pub mod config;
pub mod user;
pub mod whoami;
