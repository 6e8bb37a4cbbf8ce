//! `register` (update): registers the caller; idempotent. The anonymous
//! principal is refused. A new user starts with a full bucket.

pub type Response = crate::results::ProfileResult;
