//! Update endpoints, one file each: the `#[update]` wrapper and its plain
//! `*_impl` function with tests.

pub mod add_worker;
pub mod approve_users;
pub mod ban_user;
pub mod cancel;
pub mod create_model;
pub mod delete_model;
pub mod deploy_model;
pub mod generate;
pub mod generate_and_wait;
pub mod job_finished;
pub mod job_progress;
pub mod register;
pub mod remove_worker;
pub mod set_config;
pub mod set_default_quota;
pub mod set_paused;
pub mod set_user_quota;
pub mod spawn_workers;
pub mod unban_user;
pub mod undeploy_model;
pub mod upload_chunk;
pub mod upload_worker_wasm;
pub mod wait_round;
pub mod worker_ready;
