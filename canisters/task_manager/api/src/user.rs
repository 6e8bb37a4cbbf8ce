//! `user` (query, controllers): any user's profile.

use candid::Principal;

use crate::{AdminError, UserProfile};

pub type Args = Principal;
worker_api::named_result!(UserResult, UserProfile, AdminError);
pub type Response = UserResult;
