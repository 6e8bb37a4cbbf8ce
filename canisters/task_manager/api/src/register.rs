//! `register` (update): registers the caller; idempotent. The anonymous
//! principal is refused. A new user starts with a full bucket.

use crate::{Error, UserProfile};

pub type Response = Result<UserProfile, Error>;
