//! Candid types of the `worker` canister.
//!
//! A worker holds one or more consecutive *stages* of a model and runs them
//! on the engine's own llama forward pass (`f32` or 8-bit weights). The task manager tells it what to load ([`load_stages`]) and
//! which jobs to run ([`run_job`]); the worker holding stage 0 of a pipeline
//! (the *driver*) prefills the prompt and then produces one token per update
//! message, continuing by a call to itself ([`step`]) and sending the hidden
//! states of each step through its downstream peers ([`forward`]).
//!
//! `run_job` and `load_stages` answer at once; the job or load goes on by
//! itself and the worker reports its end to the task manager
//! (`job_finished`, `worker_ready`). Deadlines and limits of that contract
//! are in [`protocol`].
//!
//! One module per endpoint, each exporting `Args` (where the method takes an
//! argument) and `Response`, a named result type (no `Result_N` in the
//! `.did`); shared types and [`WorkerError`] are in [`types`].

pub mod protocol;
pub mod result;
pub mod types;
pub use types::*;

pub mod cancel_job;
pub mod end_job;
pub mod forward;
pub mod load_stages;
pub mod load_step;
pub mod run_job;
pub mod status;
pub mod step;
