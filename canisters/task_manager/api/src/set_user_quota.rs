//! `set_user_quota` (update, controllers): a per-user quota override, or
//! `None` to go back to the default.

use candid::{CandidType, Deserialize, Principal};

use crate::Quota;

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct SetUserQuotaArgs {
    pub user: Principal,
    pub quota: Option<Quota>,
}

pub type Args = SetUserQuotaArgs;
pub type Response = crate::results::AdminResult;
