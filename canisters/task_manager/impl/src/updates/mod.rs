//! Update endpoints, one file each: the `#[update]` wrapper and its plain
//! `*_impl` function with tests.

pub mod ban_user;
pub mod create_model;
pub mod delete_model;
pub mod register;
pub mod set_default_quota;
pub mod set_paused;
pub mod set_user_quota;
pub mod unban_user;
pub mod upload_chunk;
