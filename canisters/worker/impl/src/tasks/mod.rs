//! What runs outside the endpoint that started it, each from a fresh
//! context of its own (a timer), so that no call the task manager waits on
//! stays open: a job's steps ([`jobs`]), a load ([`loads`]), the delivery
//! of reports to the task manager ([`reports`]) and the expiry of peers'
//! caches ([`peers`]). Every call made here is bounded-wait
//! (`worker_api::protocol`).

pub mod jobs;
pub mod loads;
pub mod peers;
pub mod reports;

use std::cell::Cell;
use std::future::Future;
use std::thread::LocalKey;
use std::time::Duration;

use ic_cdk_timers::TimerId;

/// The one timer of a kind that is armed, and when it fires.
pub type Alarm = Cell<Option<(TimerId, u64)>>;

/// Arms `alarm` to run `task` at `at` (nanoseconds), unless it is armed
/// for that time or earlier already.
pub fn arm<F: Future<Output = ()> + 'static>(
    alarm: &'static LocalKey<Alarm>,
    at: u64,
    task: impl FnOnce() -> F,
) {
    if let Some((id, armed_at)) = alarm.get() {
        if armed_at <= at {
            return;
        }
        ic_cdk_timers::clear_timer(id);
    }
    let delay = Duration::from_nanos(at.saturating_sub(ic_cdk::api::time()));
    let id = ic_cdk_timers::set_timer(delay, task());
    alarm.set(Some((id, at)));
}
