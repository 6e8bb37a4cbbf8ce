//! `user` (query, controllers): any user's profile.

use candid::Principal;

use crate::{Error, UserProfile};

pub type Args = Principal;
pub type Response = Result<UserProfile, Error>;
