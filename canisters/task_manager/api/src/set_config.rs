//! `set_config` (update, controllers): changes the canister-wide settings
//! (registration policy, limits, timeouts); returns them as they are now.

use crate::ConfigUpdate;

pub type Args = ConfigUpdate;
pub type Response = crate::results::ConfigResult;
