//! Test canister: traps in the middle of a call. State written before the
//! `await` is committed with the first message; state written in the
//! callback is rolled back when the callback traps, and `call_on_cleanup`
//! still runs.

use std::cell::Cell;

use candid::Principal;
use ic_cdk::call::Call;
use ic_cdk::{query, update};

thread_local! {
    static BEFORE: Cell<u64> = const { Cell::new(0) };
    static AFTER: Cell<u64> = const { Cell::new(0) };
}

/// `before` is incremented, then `target.inc` is called, then `after` is
/// incremented and the callback traps.
#[update]
async fn trap_after_call(target: Principal) -> u64 {
    BEFORE.set(BEFORE.get() + 1);
    let _ = Call::unbounded_wait(target, "inc").await;
    AFTER.set(AFTER.get() + 1);
    ic_cdk::trap("trap in the reply callback")
}

/// `before` is incremented and a one-way call to `target.inc` is performed,
/// then the message traps: the increment and the outgoing call are both
/// discarded.
#[update]
fn trap_after_oneway(target: Principal) -> u64 {
    BEFORE.set(BEFORE.get() + 1);
    let sent = Call::unbounded_wait(target, "inc").oneway().is_ok();
    ic_cdk::trap(format!("trap after a one-way call (sent: {sent})"))
}

/// (before, after)
#[query]
fn counts() -> (u64, u64) {
    (BEFORE.get(), AFTER.get())
}
