//! `whoami` (query): the caller's profile and current token balance.

pub type Response = crate::results::ProfileResult;
