//! `unban_user` (update, controllers): lifts a ban.

use candid::Principal;

pub type Args = Principal;
pub type Response = crate::results::AdminResult;
