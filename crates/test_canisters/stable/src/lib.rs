//! Test canister: state in `ic-stable-structures` (survives upgrades) next to
//! heap state that is saved in `pre_upgrade` and restored in `post_upgrade`.

use std::cell::{Cell, RefCell};

use ic_cdk::{init, post_upgrade, pre_upgrade, query, update};
use ic_stable_structures::memory_manager::{MemoryId, MemoryManager, VirtualMemory};
use ic_stable_structures::{DefaultMemoryImpl, StableBTreeMap, StableCell};

type Memory = VirtualMemory<DefaultMemoryImpl>;

const ENTRIES: MemoryId = MemoryId::new(0);
const SAVED: MemoryId = MemoryId::new(1);

thread_local! {
    static MEMORY_MANAGER: RefCell<MemoryManager<DefaultMemoryImpl>> =
        RefCell::new(MemoryManager::init(DefaultMemoryImpl::default()));
    static MAP: RefCell<StableBTreeMap<u64, String, Memory>> = RefCell::new(
        StableBTreeMap::init(MEMORY_MANAGER.with_borrow(|m| m.get(ENTRIES))),
    );
    static SAVED_COUNTER: RefCell<StableCell<u64, Memory>> = RefCell::new(
        StableCell::init(MEMORY_MANAGER.with_borrow(|m| m.get(SAVED)), 0),
    );
    /// Heap-only counter: kept across upgrades through `pre_upgrade`.
    static HEAP_COUNTER: Cell<u64> = const { Cell::new(0) };
    /// Heap-only, never saved: starts again from zero after an upgrade.
    static VOLATILE: Cell<u64> = const { Cell::new(0) };
    static UPGRADES: Cell<u64> = const { Cell::new(0) };
    static TRAP_IN_PRE_UPGRADE: Cell<bool> = const { Cell::new(false) };
}

#[init]
fn init() {}

#[pre_upgrade]
fn pre_upgrade() {
    let value = HEAP_COUNTER.get();
    SAVED_COUNTER.with_borrow_mut(|c| c.set(value));
    if TRAP_IN_PRE_UPGRADE.get() {
        ic_cdk::trap("pre_upgrade asked to trap");
    }
}

/// Makes the next `pre_upgrade` trap (after it has written stable memory).
#[update]
fn trap_in_pre_upgrade(on: bool) {
    TRAP_IN_PRE_UPGRADE.set(on);
}

#[post_upgrade]
fn post_upgrade(trap: bool) {
    HEAP_COUNTER.set(SAVED_COUNTER.with_borrow(|c| *c.get()));
    UPGRADES.set(UPGRADES.get() + 1);
    if trap {
        ic_cdk::trap("post_upgrade asked to trap");
    }
}

#[update]
fn put(key: u64, value: String) -> Option<String> {
    HEAP_COUNTER.set(HEAP_COUNTER.get() + 1);
    VOLATILE.set(VOLATILE.get() + 1);
    MAP.with_borrow_mut(|m| m.insert(key, value))
}

#[query]
fn get(key: u64) -> Option<String> {
    MAP.with_borrow(|m| m.get(&key))
}

#[query]
fn len() -> u64 {
    MAP.with_borrow(|m| m.len())
}

/// (heap counter saved across upgrades, volatile counter, upgrades seen by
/// this module instance)
#[query]
fn counters() -> (u64, u64, u64) {
    (HEAP_COUNTER.get(), VOLATILE.get(), UPGRADES.get())
}
