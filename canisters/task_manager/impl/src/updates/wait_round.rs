use ic_cdk::update;

use crate::guards::small_arg;

/// One round trip of a waiting `generate_and_wait` (see
/// [`crate::updates::generate_and_wait`]); it does nothing itself.
#[update(guard = "small_arg")]
fn wait_round() {}
