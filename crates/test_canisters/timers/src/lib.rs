//! Test canister: timers from `ic-cdk-timers` (one-shot and periodic, which
//! run through `canister_global_timer` and self-calls) and the raw global
//! timer.

use std::cell::Cell;
use std::time::Duration;

use ic_cdk::{query, update};

thread_local! {
    static ONCE: Cell<u64> = const { Cell::new(0) };
    static TICKS: Cell<u64> = const { Cell::new(0) };
    static FIRED_AT: Cell<u64> = const { Cell::new(0) };
}

/// A one-shot timer after `secs` seconds.
#[update]
fn once_after(secs: u64) {
    ic_cdk_timers::set_timer(Duration::from_secs(secs), async {
        ONCE.set(ONCE.get() + 1);
        FIRED_AT.set(ic_cdk::api::time());
    });
}

/// A periodic timer every `secs` seconds.
#[update]
fn every(secs: u64) {
    ic_cdk_timers::set_timer_interval(Duration::from_secs(secs), || async {
        TICKS.set(TICKS.get() + 1);
    });
}

/// (one-shot fired, periodic ticks, time of the last one-shot)
#[query]
fn fired() -> (u64, u64, u64) {
    (ONCE.get(), TICKS.get(), FIRED_AT.get())
}
