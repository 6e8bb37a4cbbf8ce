//! `set_paused` (update, controllers): while paused, new generation
//! requests are refused with `Error::Paused`; running jobs finish.

pub type Args = bool;
pub type Response = crate::results::AdminResult;
