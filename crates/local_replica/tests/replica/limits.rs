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
    // New canisters get the IC's default of 3 GiB.
    let status = ic.canister_status(user(), id).unwrap();
    assert_eq!(
        status.settings.wasm_memory_limit,
        candid::Nat::from(3u64 << 30)
    );
    ic.update_settings(user(), id, settings(32 << 20)).unwrap();
    // Growing past it traps with the IC's error, and nothing is kept.
    assert_reject(
        ic.update_one::<_, u64>(id, user(), "alloc", &64u64),
        RejectCode::CanisterError,
        ErrorCode::CanisterWasmMemoryLimitExceeded,
        "exceeded its current Wasm memory limit of 33554432 bytes",
    );
    assert!(ic.heap_size(id).unwrap() < 32 << 20);
    // Queries are not held to it: with the limit 1 MiB above the heap, a
    // query may still allocate more.
    let heap = ic.heap_size(id).unwrap() as u64;
    ic.update_settings(user(), id, settings(heap + (1 << 20)))
        .unwrap();
    let blob: Vec<u8> = ic.query_one(id, user(), "blob", &1_900_000u64).unwrap();
    assert_eq!(blob.len(), 1_900_000);
    assert_reject(
        ic.update_one::<_, u64>(id, user(), "alloc", &2u64),
        RejectCode::CanisterError,
        ErrorCode::CanisterWasmMemoryLimitExceeded,
        "Wasm memory limit",
    );
    ic.update_settings(user(), id, settings(0)).unwrap();
    assert_eq!(
        ic.update_one::<_, u64>(id, user(), "alloc", &64u64)
            .unwrap(),
        64 << 20
    );
}

/// Stable memory a message may touch, with small limits so the test is
/// quick (the IC's are 2 GiB per message, 8 GiB per install or upgrade,
/// 1 GiB per query).
#[test]
fn stable_memory_accessed_and_dirtied_per_message_is_limited() {
    use local_replica::StablePageLimit;
    let limits = Limits {
        stable_accessed_pages: StablePageLimit {
            message: 6,
            upgrade: 8,
            query: 2,
        },
        stable_dirty_pages: StablePageLimit {
            message: 4,
            upgrade: 8,
            query: 2,
        },
        ..Limits::default()
    };
    let mut ic = replica_with(Config {
        limits,
        ..Config::default()
    });
    let id = counter(&mut ic);
    ic.update_one::<_, i64>(id, user(), "stable_grow", &1u64)
        .unwrap();
    let write = |ic: &mut local_replica::LocalReplica, offset: u64, bytes: usize| {
        ic.update::<_, ()>(id, user(), "stable_write", (offset, vec![7u8; bytes]))
    };
    // Four 4 KiB pages may be written in one message, five may not.
    write(&mut ic, 0, 4 * 4096).unwrap();
    assert_reject(
        write(&mut ic, 0, 4 * 4096 + 1),
        RejectCode::CanisterError,
        ErrorCode::CanisterMemoryAccessLimitExceeded,
        "modified pages in the stable memory",
    );
    // The failed write left nothing behind.
    let (bytes,): (Vec<u8>,) = ic
        .query(id, user(), "stable_read", (16384u64, 2u64))
        .unwrap();
    assert_eq!(bytes, vec![0, 0]);
    // A query reads at most two pages.
    ic.query::<_, (Vec<u8>,)>(id, user(), "stable_read", (0u64, 8192u64))
        .unwrap();
    assert_reject(
        ic.query::<_, (Vec<u8>,)>(id, user(), "stable_read", (0u64, 8193u64)),
        RejectCode::CanisterError,
        ErrorCode::CanisterMemoryAccessLimitExceeded,
        "accessed pages in the stable memory",
    );
}

/// Installs and upgrades have their own, larger stable memory limit.
#[test]
fn upgrades_may_dirty_more_stable_memory_than_messages() {
    use local_replica::{CanisterInstallMode, StablePageLimit};
    let limits = Limits {
        stable_dirty_pages: StablePageLimit {
            message: 4,
            upgrade: 8,
            query: 2,
        },
        ..Limits::default()
    };
    let mut ic = replica_with(Config {
        limits,
        ..Config::default()
    });
    // post_upgrade writes `pages` 4 KiB pages of stable memory.
    let module = |pages: u32| {
        wat::parse_str(format!(
            r#"(module
              (import "ic0" "stable64_grow" (func $grow (param i64) (result i64)))
              (import "ic0" "stable64_write" (func $write (param i64 i64 i64)))
              (memory 1)
              (func (export "canister_post_upgrade")
                i64.const 1 call $grow drop
                i64.const 0 i64.const 0 i64.const {} call $write))"#,
            pages * 4096
        ))
        .unwrap()
    };
    let id = ic.create_canister(user()).unwrap();
    ic.install_canister(user(), id, module(8), Vec::new())
        .unwrap();
    ic.install_code(
        user(),
        id,
        CanisterInstallMode::Upgrade(None),
        module(8),
        Vec::new(),
    )
    .unwrap();
    assert_reject(
        ic.install_code(
            user(),
            id,
            CanisterInstallMode::Upgrade(None),
            module(9),
            Vec::new(),
        ),
        RejectCode::CanisterError,
        ErrorCode::CanisterMemoryAccessLimitExceeded,
        "32 KB for upgrade messages",
    );
}
