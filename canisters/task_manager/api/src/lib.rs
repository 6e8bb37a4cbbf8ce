//! Candid types of the `task_manager` canister.
//!
//! One module per endpoint, named like the endpoint, each exporting `Args`
//! (where the method takes an argument) and `Response`; the types the
//! endpoints share, the [`Error`] enum among them, are in [`types`] and
//! re-exported here. Every response is a `Result`: callers match on a typed
//! error, never on a message string.
//!
//! ```
//! use task_manager_api::{register, Error};
//! let refused: register::Response = Err(Error::AnonymousCaller);
//! assert!(refused.is_err());
//! ```

pub mod types;
pub use types::*;

pub mod add_worker;
pub mod ban_user;
pub mod cancel;
pub mod config;
pub mod create_model;
pub mod delete_model;
pub mod deploy_model;
pub mod generate;
pub mod generate_and_wait;
pub mod job;
pub mod job_progress;
pub mod missing_chunks;
pub mod model_chunk;
pub mod model_manifest;
pub mod models;
pub mod pipelines;
pub mod register;
pub mod set_default_quota;
pub mod set_paused;
pub mod set_user_quota;
pub mod spawn_workers;
pub mod unban_user;
pub mod upload_chunk;
pub mod upload_worker_wasm;
pub mod user;
pub mod whoami;
pub mod worker_ready;
pub mod workers;
