//! `config` (query): the canister-wide settings.

pub type Response = crate::results::ConfigResult;
