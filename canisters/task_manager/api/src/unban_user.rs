//! `unban_user` (update, controllers): lifts a ban.

use candid::Principal;

use crate::Error;

pub type Args = Principal;
pub type Response = Result<(), Error>;
