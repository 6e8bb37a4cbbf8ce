//! Candid types of the `task_manager` canister.
//!
//! One module per endpoint, named like the endpoint, each exporting `Args`
//! (where the method takes an argument) and `Response`; the types the
//! endpoints share are in [`types`] and re-exported here. Every response is
//! a named result (`RegisterResult`, …: `variant { Ok; Err }` with a name
//! of its own, so the `.did` never renumbers) whose error is the
//! audience's: [`UserError`], [`AdminError`] or [`CallbackError`], each
//! with a `GenericError` catch-all (see [`errors`]). Callers match on a
//! typed error, never on a message string.
//!
//! ```
//! use task_manager_api::{register, UserError};
//! let refused: register::Response = Err(UserError::AnonymousCaller).into();
//! assert_eq!(refused.into_result(), Err(UserError::AnonymousCaller));
//! ```

pub mod errors;
pub mod results;
pub mod types;
pub use errors::{AdminError, UserError};
pub use results::*;
pub use types::*;

pub mod callbacks;
pub use callbacks::{CallbackError, CallbackResult};

pub mod add_worker;
pub mod approve_users;
pub mod ban_user;
pub mod cancel;
pub mod config;
pub mod create_model;
pub mod delete_model;
pub mod deploy_model;
pub mod generate;
pub mod generate_and_wait;
pub mod job;
pub mod job_finished;
pub mod job_progress;
pub mod missing_chunks;
pub mod model_chunk;
pub mod model_manifest;
pub mod models;
pub mod my_jobs;
pub mod pending_users;
pub mod pipelines;
pub mod register;
pub mod remove_worker;
pub mod set_config;
pub mod set_default_quota;
pub mod set_paused;
pub mod set_user_quota;
pub mod spawn_workers;
pub mod timing;
pub mod unban_user;
pub mod undeploy_model;
pub mod upload_chunk;
pub mod upload_worker_wasm;
pub mod user;
pub mod wait_round;
pub mod whoami;
pub mod worker_ready;
pub mod workers;
