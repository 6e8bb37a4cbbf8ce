//! `approve_users` (update, controllers): makes principals users with a
//! full bucket: approves their requests under `Approval`, lists them under
//! `AllowList` (they need not have called `register`). Returns how many
//! became users.

use candid::Principal;

use crate::AdminError;

pub type Args = Vec<Principal>;
worker_api::named_result!(ApproveUsersResult, u32, AdminError);
pub type Response = ApproveUsersResult;
