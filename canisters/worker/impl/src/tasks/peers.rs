//! Drops the KV caches of jobs this worker serves as a downstream peer
//! once no step has touched them for `PEER_CACHE_TTL_SECS`, even when no
//! `forward` comes to sweep them: a timer armed while caches are held.

use super::{arm, Alarm};
use crate::state::{mutate_state, read_state};

thread_local! {
    static ALARM: Alarm = const { Alarm::new(None) };
}

/// Arms the sweep for the next expiry, if caches are held.
pub fn schedule() {
    let next = read_state(|s| s.runtime.as_ref().and_then(|r| r.next_peer_expiry()));
    if let Some(at) = next {
        arm(&ALARM, at, sweep);
    }
}

async fn sweep() {
    ALARM.set(None);
    let now = ic_cdk::api::time();
    let dropped = mutate_state(|s| s.runtime.as_mut().map_or(0, |r| r.expire_peer_jobs(now)));
    if dropped > 0 {
        ic_cdk::println!("dropped the caches of {dropped} jobs without end_job");
    }
    schedule();
}
