//! `set_paused` (update, controllers): while paused, new generation
//! requests are refused with `Error::Paused`; running jobs finish.

use crate::Error;

pub type Args = bool;
pub type Response = Result<(), Error>;
