//! Inter-canister calls, self-calls, call contexts, reject codes, bounded
//! waits, cycles, composite queries and `raw_rand`.

use std::time::Duration;

use candid::{CandidType, Deserialize, Principal};
use local_replica::{canister_id, Config, ErrorCode, RejectCode};

use crate::common::*;

/// The caller canister's view of one call.
#[derive(CandidType, Deserialize, Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Reply(Vec<u8>),
    Reject { code: u32, message: String },
    NotSent(String),
}

fn call_raw(
    ic: &mut local_replica::LocalReplica,
    caller: Principal,
    target: Principal,
    method: &str,
    arg: Vec<u8>,
    cycles: u128,
) -> Outcome {
    ic.update(
        caller,
        user(),
        "call_raw",
        (target, method.to_string(), arg, cycles),
    )
    .map(|(o,)| o)
    .unwrap()
}

#[track_caller]
fn assert_rejected(out: &Outcome, code: u32, needle: &str) {
    match out {
        Outcome::Reject { code: c, message } => {
            assert_eq!(*c, code, "{message}");
            assert!(
                message.contains(needle),
                "expected `{needle}` in `{message}`"
            );
        }
        other => panic!("expected a reject with code {code}, found {other:?}"),
    }
}

#[test]
fn calls_to_another_canister_and_to_itself() {
    let mut ic = replica();
    let counter = counter(&mut ic);
    let caller = install(&mut ic, "tc_caller", no_arg());
    let r: (Result<u64, String>,) = ic
        .update(caller, user(), "inc_remote", (counter, 3u64))
        .unwrap();
    assert_eq!(r.0, Ok(3));
    assert_eq!(
        ic.query_one::<_, u64>(counter, user(), "get", &()).unwrap(),
        3
    );
    // The callee saw the caller canister as msg_caller.
    let env = match call_raw(&mut ic, caller, counter, "env_update", no_arg(), 0) {
        Outcome::Reply(b) => b,
        other => panic!("{other:?}"),
    };
    let env: crate::execution::Env = candid::decode_one(&env).unwrap();
    assert_eq!(env.caller, caller);
    // A chain of 5 self-calls: 6 executions of self_chain, each one
    // waiting for the next.
    let depth: u64 = ic.update_one(caller, user(), "self_chain", &5u64).unwrap();
    assert_eq!(depth, 6);
    assert_eq!(
        ic.query_one::<_, u64>(caller, user(), "self_calls", &())
            .unwrap(),
        6
    );
    // Calls made at once are delivered in order.
    let values: Vec<u64> = ic
        .update(caller, user(), "fan_out", (counter, 4u64))
        .map(|(v,)| v)
        .unwrap();
    assert_eq!(values, vec![4, 5, 6, 7]);
    // Every execution's instructions are recorded.
    let replies = ic
        .executions()
        .iter()
        .filter(|r| r.canister == caller && r.kind == local_replica::ExecutionKind::ReplyCallback)
        .count();
    assert!(replies >= 3 + 5 + 4, "{replies} reply callbacks recorded");
    assert!(ic
        .executions()
        .iter()
        .all(|r| r.instructions > 0 || r.kind == local_replica::ExecutionKind::Start));
}

#[test]
fn rejects_carry_the_ic_codes() {
    let mut ic = replica();
    let counter = counter(&mut ic);
    let caller = install(&mut ic, "tc_caller", no_arg());
    let empty = ic.create_canister(user()).unwrap();
    let missing = canister_id(999);

    assert_rejected(
        &call_raw(&mut ic, caller, missing, "inc", no_arg(), 0),
        3,
        "not found",
    );
    assert_rejected(
        &call_raw(&mut ic, caller, counter, "nope", no_arg(), 0),
        5,
        "no update method 'nope'",
    );
    assert_rejected(
        &call_raw(&mut ic, caller, counter, "inc_then_trap", no_arg(), 0),
        5,
        "deliberate trap",
    );
    assert_rejected(
        &call_raw(
            &mut ic,
            caller,
            counter,
            "reject",
            candid::encode_one("no").unwrap(),
            0,
        ),
        4,
        "no",
    );
    assert_rejected(
        &call_raw(&mut ic, caller, counter, "no_reply", no_arg(), 0),
        5,
        "did not reply",
    );
    assert_rejected(
        &call_raw(&mut ic, caller, empty, "inc", no_arg(), 0),
        5,
        "no Wasm module",
    );
    assert_rejected(
        &call_raw(
            &mut ic,
            caller,
            Principal::management_canister(),
            "no_such_method",
            no_arg(),
            0,
        ),
        4,
        "no method 'no_such_method'",
    );
    assert_rejected(
        &call_raw(
            &mut ic,
            caller,
            Principal::management_canister(),
            "canister_status",
            no_arg(),
            0,
        ),
        4,
        "Error decoding candid",
    );
    // A composite query cannot be called in replicated mode.
    assert_rejected(
        &call_raw(
            &mut ic,
            caller,
            caller,
            "composite_get",
            candid::encode_one(counter).unwrap(),
            0,
        ),
        5,
        "replicated mode",
    );
    // The trapping callee's state was rolled back; the rest went through.
    assert_eq!(
        ic.query_one::<_, u64>(counter, user(), "get", &()).unwrap(),
        0
    );
    // Query methods can be called by canisters (as replicated queries).
    match call_raw(&mut ic, caller, counter, "get", no_arg(), 0) {
        Outcome::Reply(b) => assert_eq!(candid::decode_one::<u64>(&b).unwrap(), 0),
        other => panic!("{other:?}"),
    }
}

#[test]
fn inter_canister_payloads_are_limited_to_2_mib() {
    let mut ic = replica();
    let counter = counter(&mut ic);
    let caller = install(&mut ic, "tc_caller", no_arg());
    // 1 MiB leaves (and the callee, expecting a candid nat, traps on the
    // zero bytes).
    let out: (Outcome,) = ic
        .update(
            caller,
            user(),
            "call_with_payload",
            (counter, "accept".to_string(), 1u64 << 20),
        )
        .unwrap();
    assert_rejected(&out.0, 5, "Cannot parse header");
    // 3 MiB: call_data_append traps in the caller.
    assert_reject(
        ic.update::<_, (Outcome,)>(
            caller,
            user(),
            "call_with_payload",
            (counter, "inc".to_string(), 3u64 << 20),
        ),
        RejectCode::CanisterError,
        ErrorCode::CanisterContractViolation,
        "exceeds the inter-canister limit of 2097152 bytes",
    );
}

#[test]
fn trap_in_the_middle_of_a_call() {
    let mut ic = replica();
    let counter = counter(&mut ic);
    let trapper = install(&mut ic, "tc_trapper", no_arg());
    // The first message (before the await) is committed, the callback
    // that traps is rolled back, and the caller gets CanisterError.
    let r = rejected(ic.update_one::<_, u64>(trapper, user(), "trap_after_call", &counter));
    assert_eq!(r.code, RejectCode::CanisterError);
    assert!(r.message.contains("trap in the reply callback"), "{r}");
    assert_eq!(
        ic.query::<_, (u64, u64)>(trapper, user(), "counts", ())
            .unwrap(),
        (1, 0)
    );
    assert_eq!(
        ic.query_one::<_, u64>(counter, user(), "get", &()).unwrap(),
        1
    );
    // A one-way call made by a message that then traps never leaves.
    let r = rejected(ic.update_one::<_, u64>(trapper, user(), "trap_after_oneway", &counter));
    assert!(r.message.contains("sent: true"), "{r}");
    ic.run_until_idle().unwrap();
    assert_eq!(
        ic.query_one::<_, u64>(counter, user(), "get", &()).unwrap(),
        1
    );
    assert_eq!(
        ic.query::<_, (u64, u64)>(trapper, user(), "counts", ())
            .unwrap(),
        (1, 0)
    );
    // The ic-cdk cleanup callback ran after the trapping reply callback.
    assert!(ic
        .executions()
        .iter()
        .any(|r| r.canister == trapper && r.kind == local_replica::ExecutionKind::Cleanup));
}

#[test]
fn bounded_wait_call_times_out_with_sys_unknown() {
    let mut ic = replica();
    let counter = counter(&mut ic);
    let caller = install(&mut ic, "tc_caller", no_arg());
    // A bounded-wait call that completes in time.
    let out: (Outcome,) = ic
        .update(
            caller,
            user(),
            "call_bounded",
            (counter, "inc".to_string(), no_arg(), 10u32),
        )
        .unwrap();
    assert!(matches!(out.0, Outcome::Reply(_)), "{out:?}");
    // The callee sees the deadline (0 for an unbounded-wait call).
    let out: (Outcome,) = ic
        .update(
            caller,
            user(),
            "call_bounded",
            (counter, "deadline".to_string(), no_arg(), 10u32),
        )
        .unwrap();
    let Outcome::Reply(bytes) = out.0 else {
        panic!("{out:?}")
    };
    assert_eq!(
        candid::decode_one::<u64>(&bytes).unwrap(),
        ic.time() + 10_000_000_000
    );
    let out = call_raw(&mut ic, caller, counter, "deadline", no_arg(), 0);
    let Outcome::Reply(bytes) = out else {
        panic!("{out:?}")
    };
    assert_eq!(candid::decode_one::<u64>(&bytes).unwrap(), 0);
    // Round 1 runs the ingress message, which sends the call with a 1 s
    // deadline; time then passes before the callee runs.
    let msg = ic
        .submit_update(
            caller,
            user(),
            "call_bounded",
            candid::encode_args((counter, "inc".to_string(), no_arg(), 1u32)).unwrap(),
        )
        .unwrap();
    ic.tick();
    ic.advance_time(Duration::from_secs(5));
    let out: Outcome = candid::decode_one(&ic.await_ingress(msg).unwrap()).unwrap();
    assert_rejected(&out, 6, "deadline has expired");
    // The callee still executed the call (the response was dropped).
    ic.run_until_idle().unwrap();
    assert_eq!(
        ic.query_one::<_, u64>(counter, user(), "get", &()).unwrap(),
        2
    );
}

/// How cycles move between canisters, with fees off so that every cycle
/// is accounted for (fees are tested in `cycles`).
#[test]
fn cycles_move_with_calls_and_are_refunded() {
    let mut ic = replica_with(local_replica::Config {
        fees: local_replica::FeeSchedule::free(),
        ..Default::default()
    });
    let counter = counter(&mut ic);
    let caller = install(&mut ic, "tc_caller", no_arg());
    let (c0, k0) = (
        ic.cycle_balance(caller).unwrap(),
        ic.cycle_balance(counter).unwrap(),
    );
    let out = call_raw(
        &mut ic,
        caller,
        counter,
        "accept",
        candid::encode_one(300u128).unwrap(),
        1_000,
    );
    match out {
        Outcome::Reply(b) => assert_eq!(candid::decode_one::<u128>(&b).unwrap(), 300),
        other => panic!("{other:?}"),
    }
    assert_eq!(ic.cycle_balance(caller).unwrap(), c0 - 300);
    assert_eq!(ic.cycle_balance(counter).unwrap(), k0 + 300);
    // More cycles than the caller has: ic-cdk does not send the call.
    let out = call_raw(
        &mut ic,
        caller,
        counter,
        "accept",
        candid::encode_one(1u128).unwrap(),
        u128::MAX / 2,
    );
    assert!(matches!(out, Outcome::NotSent(_)), "{out:?}");
    assert_eq!(ic.cycle_balance(caller).unwrap(), c0 - 300);
    // Burning cycles.
    let burnt: u128 = ic
        .update_one(counter, user(), "burn_cycles", &50u128)
        .unwrap();
    assert_eq!(burnt, 50);
    assert_eq!(ic.cycle_balance(counter).unwrap(), k0 + 250);
    // A canister creates a canister with cycles; it becomes its controller.
    let out: Outcome = ic
        .update_one(caller, user(), "create", &2_000_000_000_000u128)
        .unwrap();
    let Outcome::Reply(bytes) = out else {
        panic!("{out:?}")
    };
    let created: local_replica::management::CanisterIdRecord = candid::decode_one(&bytes).unwrap();
    assert_eq!(ic.controllers(created.canister_id).unwrap(), vec![caller]);
    assert_eq!(
        ic.cycle_balance(created.canister_id).unwrap(),
        2_000_000_000_000
    );
    assert_eq!(
        ic.cycle_balance(caller).unwrap(),
        c0 - 300 - 2_000_000_000_000
    );
}

#[test]
fn composite_query_calls_other_canisters() {
    let mut ic = replica();
    let counter = counter(&mut ic);
    let caller = install(&mut ic, "tc_caller", no_arg());
    ic.update_one::<_, u64>(counter, user(), "inc", &())
        .unwrap();
    let v: u64 = ic
        .query_one(caller, user(), "composite_get", &counter)
        .unwrap();
    assert_eq!(v, 1);
    assert_reject(
        ic.update_one::<_, u64>(caller, user(), "composite_get", &counter),
        RejectCode::CanisterError,
        ErrorCode::CompositeQueryCalledInReplicatedMode,
        "replicated mode",
    );
}

#[test]
fn raw_rand_is_reproducible_per_seed() {
    let first = |seed: u64| {
        let mut ic = replica_with(Config {
            seed,
            ..Config::default()
        });
        let caller = install(&mut ic, "tc_caller", no_arg());
        let a: Vec<u8> = ic.update_one(caller, user(), "rand", &()).unwrap();
        let b: Vec<u8> = ic.update_one(caller, user(), "rand", &()).unwrap();
        (a, b)
    };
    let (a, b) = first(7);
    assert_eq!(a.len(), 32);
    assert_ne!(a, b);
    assert_eq!(first(7), (a.clone(), b));
    assert_ne!(first(8).0, a);
    // Only canisters may call raw_rand.
    let mut ic = replica();
    assert_reject(
        ic.update_call(
            Principal::management_canister(),
            user(),
            "raw_rand",
            no_arg(),
        ),
        RejectCode::CanisterReject,
        ErrorCode::CanisterRejectedMessage,
        "cannot be called with an ingress message",
    );
}
