//! `set_default_quota` (update, controllers): the quota of every user
//! without an override. Buckets keep their level, capped at the new
//! capacity.

use crate::Quota;

pub type Args = Quota;
pub type Response = crate::results::AdminResult;
