//! Query endpoints.

pub mod status;
