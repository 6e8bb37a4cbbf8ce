//! The worker's logic as plain Rust, tested natively: what an assignment
//! is ([`assignment`]), loading it ([`load`]), stages loaded on the
//! engine's pass and the KV caches of jobs ([`runtime`]), a job as the driver steps it
//! ([`job`]), the reports owed to the task manager ([`outbox`]) and cancels
//! that came before their job ([`cancels`]). Time is a parameter here.

pub mod assignment;
pub mod cancels;
pub mod job;
pub mod load;
pub mod outbox;
pub mod runtime;
#[cfg(test)]
pub mod test_support;
