//! `whoami` (query): the caller's profile and current token balance.

use crate::{Error, UserProfile};

pub type Response = Result<UserProfile, Error>;
