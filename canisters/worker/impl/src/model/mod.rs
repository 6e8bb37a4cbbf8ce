//! The worker's logic as plain Rust, tested natively: what an assignment
//! is ([`assignment`]), stages loaded into tract ([`runtime`]), a job as
//! the driver steps it ([`job`]).

pub mod assignment;
pub mod job;
pub mod load;
pub mod runtime;
