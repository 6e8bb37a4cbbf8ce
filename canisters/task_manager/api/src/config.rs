//! `config` (query): the canister-wide settings.

use crate::{Config, Error};

pub type Response = Result<Config, Error>;
