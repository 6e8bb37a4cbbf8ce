//! `set_default_quota` (update, controllers): the quota of every user
//! without an override. Buckets keep their level, capped at the new
//! capacity.

use crate::{Error, Quota};

pub type Args = Quota;
pub type Response = Result<(), Error>;
