//! Test canister: an ic-cdk counter, plus probes of the System API for the
//! local replica's tests (traps, reply rules, stable memory, cycles,
//! instruction counting, `inspect_message`).

use std::cell::{Cell, RefCell};

use candid::{CandidType, Deserialize, Principal};
use ic_cdk::{init, inspect_message, post_upgrade, query, update};

thread_local! {
    static COUNTER: Cell<u64> = const { Cell::new(0) };
    static HEAP: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// What the canister sees of its environment in one message.
#[derive(CandidType, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Env {
    pub caller: Principal,
    pub canister: Principal,
    pub time: u64,
    pub version: u64,
    pub replicated: bool,
    pub balance: u128,
    pub status: u32,
    pub self_is_controller: bool,
    pub caller_is_controller: bool,
    pub root_key_len: u64,
}

#[init]
fn init(start: Option<u64>) {
    COUNTER.set(start.unwrap_or(0));
}

#[post_upgrade]
fn post_upgrade(start: Option<u64>) {
    COUNTER.set(start.unwrap_or(0));
}

#[update]
fn inc() -> u64 {
    COUNTER.set(COUNTER.get() + 1);
    COUNTER.get()
}

#[query]
fn get() -> u64 {
    COUNTER.get()
}

/// A query that changes the heap: the change must be discarded.
#[query]
fn inc_query() -> u64 {
    COUNTER.set(COUNTER.get() + 1);
    COUNTER.get()
}

/// Increments, grows the heap and stable memory, then traps: every change
/// must be rolled back.
#[update]
fn inc_then_trap() -> u64 {
    COUNTER.set(COUNTER.get() + 1);
    HEAP.with_borrow_mut(|h| h.resize(h.len() + (8 << 20), 7));
    ic_cdk::stable::stable_grow(1).unwrap_or_default();
    ic_cdk::stable::stable_write(0, b"dirty");
    ic_cdk::trap("deliberate trap after increment")
}

/// Increments then panics (ic-cdk turns a panic into `ic0.trap`).
#[update]
fn inc_then_panic() -> u64 {
    COUNTER.set(COUNTER.get() + 1);
    let v: Vec<u64> = Vec::new();
    #[allow(clippy::unnecessary_operation)]
    v[COUNTER.get() as usize]
}

/// Replies twice: the second `msg_reply` must trap.
#[update(manual_reply = true)]
fn reply_twice() {
    COUNTER.set(COUNTER.get() + 100);
    ic_cdk::api::msg_reply(candid::encode_one(1u64).unwrap_or_default());
    ic_cdk::api::msg_reply(candid::encode_one(2u64).unwrap_or_default());
}

/// Rejects explicitly.
#[update(manual_reply = true)]
fn reject(message: String) {
    ic_cdk::api::msg_reject(message);
}

/// Never replies.
#[update(manual_reply = true)]
fn no_reply() {}

/// A compute-heavy loop (an LCG over `n` steps).
#[update]
fn burn(n: u64) -> u64 {
    let mut x: u64 = 1;
    for i in 0..n {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(i | 1);
        x ^= x >> 29;
    }
    x
}

/// The same loop as a query (5 billion instructions limit by default).
#[query]
fn burn_query(n: u64) -> u64 {
    burn(n)
}

/// Instruction counters seen by the canister: (message, call context).
#[update]
fn counters(n: u64) -> (u64, u64) {
    std::hint::black_box(burn(std::hint::black_box(n)));
    (
        ic_cdk::api::performance_counter(0),
        ic_cdk::api::performance_counter(1),
    )
}

#[query]
fn env() -> Env {
    env_now()
}

#[update]
fn env_update() -> Env {
    env_now()
}

fn env_now() -> Env {
    Env {
        caller: ic_cdk::api::msg_caller(),
        canister: ic_cdk::api::canister_self(),
        time: ic_cdk::api::time(),
        version: ic_cdk::api::canister_version(),
        replicated: ic_cdk::api::in_replicated_execution(),
        balance: ic_cdk::api::canister_cycle_balance(),
        status: u32::from(ic_cdk::api::canister_status()),
        self_is_controller: ic_cdk::api::is_controller(&ic_cdk::api::canister_self()),
        caller_is_controller: ic_cdk::api::is_controller(&ic_cdk::api::msg_caller()),
        // The root key is not available in non-replicated queries.
        root_key_len: if ic_cdk::api::in_replicated_execution() {
            ic_cdk::api::root_key().len() as u64
        } else {
            0
        },
    }
}

/// Replies with `n` bytes.
#[query]
fn blob(n: u64) -> Vec<u8> {
    vec![0xab; n as usize]
}

/// Grows the heap by `mib` MiB and returns its size in bytes.
#[update]
fn alloc(mib: u64) -> u64 {
    HEAP.with_borrow_mut(|h| {
        h.resize(h.len() + ((mib as usize) << 20), 1);
        h.len() as u64
    })
}

/// Grows stable memory by `pages` and returns the old size (or -1 as u64).
#[update]
fn stable_grow(pages: u64) -> i64 {
    match ic_cdk::stable::stable_grow(pages) {
        Ok(old) => old as i64,
        Err(_) => -1,
    }
}

#[update]
fn stable_write(offset: u64, data: Vec<u8>) {
    ic_cdk::stable::stable_write(offset, &data);
}

#[query]
fn stable_read(offset: u64, len: u64) -> Vec<u8> {
    let mut buf = vec![0; len as usize];
    ic_cdk::stable::stable_read(offset, &mut buf);
    buf
}

#[query]
fn stable_size() -> u64 {
    ic_cdk::stable::stable_size()
}

#[update]
fn print(text: String) {
    ic_cdk::api::debug_print(text);
}

/// Accepts up to `max` of the cycles sent with the call.
#[update]
fn accept(max: u128) -> u128 {
    ic_cdk::api::msg_cycles_accept(max)
}

#[update]
fn burn_cycles(amount: u128) -> u128 {
    ic_cdk::api::cycles_burn(amount)
}

#[update]
fn set_certified(data: Vec<u8>) {
    ic_cdk::api::certified_data_set(data);
}

/// Refused by `canister_inspect_message`.
#[update]
fn forbidden() -> u64 {
    0
}

#[inspect_message]
fn inspect() {
    if ic_cdk::api::msg_method_name() != "forbidden" {
        ic_cdk::api::accept_message();
    }
}

/// `ic0.msg_method_name_*` is only available in `canister_inspect_message`:
/// this traps.
#[update]
fn method_name_in_update() -> String {
    ic_cdk::api::msg_method_name()
}

/// The deadline of the call (0 for a guaranteed-response call).
#[update]
fn deadline() -> u64 {
    ic_cdk::api::msg_deadline().map(|d| d.get()).unwrap_or(0)
}

/// `ic0.root_key_*` in a non-replicated query: traps.
#[query]
fn root_key_in_query() -> u64 {
    ic_cdk::api::root_key().len() as u64
}
