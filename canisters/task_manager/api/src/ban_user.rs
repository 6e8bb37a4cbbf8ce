//! `ban_user` (update, controllers): the user's requests are refused, at
//! `inspect_message` already for ingress.

use candid::Principal;

pub type Args = Principal;
pub type Response = crate::results::AdminResult;
