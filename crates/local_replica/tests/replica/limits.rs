//! Instruction limits from wasmtime fuel, memory limits, and the measured
//! cost of fuel counting.

use std::time::Instant;

use local_replica::{Config, ErrorCode, ExecutionKind, Limits, RejectCode};

use crate::common::*;

#[test]
fn instruction_limits_trap_with_the_ic_error() {
    let limits = Limits {
        max_instructions_update: 20_000_000,
        max_instructions_query: 5_000_000,
        ..Limits::default()
    };
    let mut ic = replica_with(Config {
        limits,
        ..Config::default()
    });
    let id = counter(&mut ic);
    // A small loop fits; a big one does not.
    ic.update_one::<_, u64>(id, user(), "burn", &10_000u64)
        .unwrap();
    assert_reject(
        ic.update_one::<_, u64>(id, user(), "burn", &100_000_000u64),
        RejectCode::CanisterError,
        ErrorCode::CanisterInstructionLimitExceeded,
        "limit of 20000000 instructions",
    );
    let record = ic.last_execution(id, "burn").unwrap();
    assert_eq!(record.instructions, 20_000_000);
    assert!(record.trap.is_some());
    // Queries have their own limit.
    ic.query_one::<_, u64>(id, user(), "burn_query", &10_000u64)
        .unwrap();
    assert_reject(
        ic.query_one::<_, u64>(id, user(), "burn_query", &1_000_000u64),
        RejectCode::CanisterError,
        ErrorCode::CanisterInstructionLimitExceeded,
        "limit of 5000000 instructions",
    );
    // The canister is intact after the traps.
    assert_eq!(ic.update_one::<_, u64>(id, user(), "inc", &()).unwrap(), 1);
}

#[test]
fn instruction_counts_are_recorded_and_visible_to_the_canister() {
    let mut ic = replica();
    let id = counter(&mut ic);
    ic.update_one::<_, u64>(id, user(), "burn", &1_000u64)
        .unwrap();
    let small = ic.last_execution(id, "burn").unwrap().instructions;
    ic.update_one::<_, u64>(id, user(), "burn", &100_000u64)
        .unwrap();
    let big = ic.last_execution(id, "burn").unwrap().instructions;
    // 99,000 more iterations of a loop of several instructions each.
    assert!(big > small + 99_000 * 5, "small {small}, big {big}");
    let (in_message, in_context): (u64, u64) =
        ic.update(id, user(), "counters", (100_000u64,)).unwrap();
    assert!(
        in_message > 99_000 * 5
            && in_message <= ic.last_execution(id, "counters").unwrap().instructions
    );
    // One message in the call context: counter 1 is counter 0 plus the
    // few instructions between the two reads.
    assert!(
        in_context >= in_message && in_context - in_message < 1_000,
        "{in_message} {in_context}"
    );
    assert!(ic
        .executions()
        .iter()
        .any(|r| r.canister == id && r.kind == ExecutionKind::Init && r.instructions > 0));
}

#[test]
fn memory_limits() {
    let limits = Limits {
        max_heap_pages: 1024, // 64 MiB
        max_stable_pages: 10,
        ..Limits::default()
    };
    let mut ic = replica_with(Config {
        limits,
        ..Config::default()
    });
    let id = counter(&mut ic);
    let size: u64 = ic.update_one(id, user(), "alloc", &16u64).unwrap();
    assert_eq!(size, 16 << 20);
    // Growing past the heap limit fails (the allocator traps) and the
    // heap is rolled back.
    let r = rejected(ic.update_one::<_, u64>(id, user(), "alloc", &128u64));
    assert_eq!(r.code, RejectCode::CanisterError, "{r}");
    assert!(ic.heap_size(id).unwrap() <= 64 << 20);
    assert_eq!(
        ic.update_one::<_, u64>(id, user(), "alloc", &1u64).unwrap(),
        17 << 20
    );
    // Stable memory growth returns -1 past the limit.
    assert_eq!(
        ic.update_one::<_, i64>(id, user(), "stable_grow", &6u64)
            .unwrap(),
        0
    );
    assert_eq!(
        ic.update_one::<_, i64>(id, user(), "stable_grow", &6u64)
            .unwrap(),
        -1
    );
    assert_eq!(
        ic.update_one::<_, i64>(id, user(), "stable_grow", &4u64)
            .unwrap(),
        6
    );
}

/// The measured overhead: fuel-counted instructions against wall time for a
/// compute-heavy message. Printed, not asserted (run with --nocapture).
#[test]
fn measured_overhead_of_a_compute_heavy_message() {
    let mut ic = replica();
    let id = counter(&mut ic);
    for n in [1_000_000u64, 20_000_000] {
        let start = Instant::now();
        ic.update_one::<_, u64>(id, user(), "burn", &n).unwrap();
        let total = start.elapsed();
        let record = ic.last_execution(id, "burn").unwrap().clone();
        let secs = record.wall.as_secs_f64();
        println!(
            "burn({n}): {} instructions, {:.3} s in the message ({:.3} s with the round), {:.0} M instructions/s",
            record.instructions,
            secs,
            total.as_secs_f64(),
            record.instructions as f64 / secs / 1e6
        );
        assert!(record.instructions > n * 5);
    }
}

#[test]
fn wasm_memory_limit_setting_bounds_heap_growth_in_updates() {
    let mut ic = replica();
    let id = counter(&mut ic);
    let settings = |limit: u64| local_replica::management::CanisterSettings {
        wasm_memory_limit: Some(candid::Nat::from(limit)),
        ..Default::default()
    };
    ic.update_settings(user(), id, settings(32 << 20)).unwrap();
    let r = rejected(ic.update_one::<_, u64>(id, user(), "alloc", &64u64));
    assert_eq!(r.code, RejectCode::CanisterError, "{r}");
    assert!(ic.heap_size(id).unwrap() < 32 << 20);
    ic.update_settings(user(), id, settings(0)).unwrap();
    assert_eq!(
        ic.update_one::<_, u64>(id, user(), "alloc", &64u64)
            .unwrap(),
        64 << 20
    );
}
