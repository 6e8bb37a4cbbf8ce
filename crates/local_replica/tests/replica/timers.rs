//! Timers: the global timer under test-controlled time, ic-cdk-timers
//! (one-shot and periodic, which run through self-calls).

use std::time::Duration;

use crate::common::*;

#[test]
fn timers_fire_when_time_advances() {
    let mut ic = replica();
    let id = install(&mut ic, "tc_timers", no_arg());
    ic.update_one::<_, ()>(id, user(), "once_after", &10u64)
        .unwrap();
    let due = ic.global_timer(id).unwrap();
    assert_eq!(due, ic.time() + 10_000_000_000);
    for _ in 0..5 {
        ic.tick();
    }
    assert_eq!(
        ic.query::<_, (u64, u64, u64)>(id, user(), "fired", ())
            .unwrap(),
        (0, 0, 0)
    );
    ic.advance_time(Duration::from_secs(9));
    ic.tick();
    ic.run_until_idle().unwrap();
    assert_eq!(
        ic.query::<_, (u64, u64, u64)>(id, user(), "fired", ())
            .unwrap()
            .0,
        0
    );
    ic.advance_time(Duration::from_secs(1));
    ic.tick();
    ic.run_until_idle().unwrap();
    let (once, ticks, at) = ic
        .query::<_, (u64, u64, u64)>(id, user(), "fired", ())
        .unwrap();
    assert_eq!((once, ticks, at), (1, 0, ic.time()));

    // A periodic timer fires once per period.
    ic.update_one::<_, ()>(id, user(), "every", &5u64).unwrap();
    for expected in 1..=3u64 {
        ic.advance_time(Duration::from_secs(5));
        ic.tick();
        ic.run_until_idle().unwrap();
        let (_, ticks, _) = ic
            .query::<_, (u64, u64, u64)>(id, user(), "fired", ())
            .unwrap();
        assert_eq!(ticks, expected);
    }
    assert!(ic
        .executions()
        .iter()
        .any(|r| r.canister == id && r.kind == local_replica::ExecutionKind::GlobalTimer));
}

#[test]
fn upgrade_deactivates_the_global_timer() {
    let mut ic = replica();
    let id = install(&mut ic, "tc_timers", no_arg());
    ic.update_one::<_, ()>(id, user(), "once_after", &10u64)
        .unwrap();
    assert_ne!(ic.global_timer(id).unwrap(), 0);
    ic.upgrade_canister(user(), id, wasm("tc_timers"), no_arg())
        .unwrap();
    assert_eq!(ic.global_timer(id).unwrap(), 0);
    ic.advance_time(Duration::from_secs(60));
    ic.tick();
    ic.run_until_idle().unwrap();
    let fired: (u64, u64, u64) = ic.query(id, user(), "fired", ()).unwrap();
    assert_eq!(fired, (0, 0, 0));
}

#[test]
fn heartbeat_runs_every_round_while_running() {
    let mut ic = replica();
    let id = ic.create_canister(user()).unwrap();
    let wasm = crate::execution::raw_module(&[], &[("canister_heartbeat", vec![])]);
    ic.install_canister(user(), id, wasm, Vec::new()).unwrap();
    let beats = |ic: &local_replica::LocalReplica| {
        ic.executions()
            .iter()
            .filter(|r| r.canister == id && r.kind == local_replica::ExecutionKind::Heartbeat)
            .count()
    };
    for _ in 0..3 {
        ic.tick();
    }
    let before_stop = beats(&ic);
    assert!(before_stop >= 3, "{before_stop} heartbeats");
    ic.stop_canister(user(), id).unwrap();
    let stopped = beats(&ic);
    for _ in 0..3 {
        ic.tick();
    }
    assert_eq!(beats(&ic), stopped, "no heartbeat while stopped");
}
