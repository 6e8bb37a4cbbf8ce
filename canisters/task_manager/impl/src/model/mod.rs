//! Plain-Rust logic of the canister, tested natively.

pub mod expiry;
pub mod jobs;
pub mod rate_limit;
pub mod registry;
pub mod spawn;
pub mod users;
pub mod workers;
