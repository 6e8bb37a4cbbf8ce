//! `pending_users` (query, controllers): registration requests waiting
//! for approval, by principal. Page with `after`: the last principal of
//! the previous page.

use candid::{CandidType, Deserialize, Principal};

use crate::AdminError;

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct PendingUsersArgs {
    pub after: Option<Principal>,
    /// At most [`crate::PageArgs::MAX_LENGTH`].
    pub count: u32,
}

pub type Args = PendingUsersArgs;
worker_api::named_result!(PendingUsersResult, Vec<Principal>, AdminError);
pub type Response = PendingUsersResult;
