//! Cycles charged as an application subnet of 13 nodes charges them, and
//! canisters with too few cycles failing as they would on the IC, without
//! losing anything else.

use std::time::Duration;

use local_replica::management::CanisterSettings;
use local_replica::{ErrorCode, FeeSchedule, LocalReplica, RejectCode};

use crate::common::*;

fn fees() -> FeeSchedule {
    FeeSchedule::default()
}

fn set_freezing_threshold(ic: &mut LocalReplica, id: candid::Principal, seconds: u64) {
    ic.update_settings(
        user(),
        id,
        CanisterSettings {
            freezing_threshold: Some(candid::Nat::from(seconds)),
            ..Default::default()
        },
    )
    .unwrap();
}

/// Leaves `id` with about `cycles` (within a million), burning the rest
/// through its own `burn_cycles`, which the counter canister exports.
fn leave(ic: &mut LocalReplica, id: candid::Principal, cycles: u128) {
    // What the burn message itself costs (induction and execution) is
    // taken on top of what it burns.
    let probe: u128 = ic.update_one(id, user(), "burn_cycles", &0u128).unwrap();
    assert_eq!(probe, 0);
    let arg = candid::encode_one(u128::MAX).unwrap();
    let overhead = fees().ingress_induction_cost((arg.len() + "burn_cycles".len()) as u64)
        + ic.last_execution(id, "burn_cycles").unwrap().cycles;
    let excess = ic.cycle_balance(id).unwrap() - cycles - overhead;
    let burnt: u128 = ic.update_one(id, user(), "burn_cycles", &excess).unwrap();
    assert_eq!(burnt, excess);
    let left = ic.cycle_balance(id).unwrap();
    assert!(
        left.abs_diff(cycles) < 1_000_000,
        "{left} instead of {cycles}"
    );
}

#[test]
fn an_ingress_update_pays_induction_and_its_instructions() {
    let mut ic = replica();
    let id = counter(&mut ic);
    let before = ic.cycle_balance(id).unwrap();
    ic.update_one::<_, u64>(id, user(), "burn", &100_000u64)
        .unwrap();
    let record = ic.last_execution(id, "burn").unwrap().clone();
    let arg = candid::encode_one(100_000u64).unwrap();
    let induction = fees().ingress_induction_cost((arg.len() + "burn".len()) as u64);
    // 5 M per update plus one cycle per instruction.
    let execution = 5_000_000 + u128::from(record.instructions / 10 * 10);
    assert_eq!(record.cycles, execution);
    assert_eq!(
        ic.cycle_balance(id).unwrap(),
        before - induction - execution
    );
    // Queries are free.
    let before = ic.cycle_balance(id).unwrap();
    ic.query_one::<_, u64>(id, user(), "get", &()).unwrap();
    assert_eq!(ic.cycle_balance(id).unwrap(), before);
}

/// A freezing threshold (in seconds) that makes canister `id` keep about
/// `keep` cycles, for the memory it uses now.
fn threshold_for(ic: &mut LocalReplica, id: candid::Principal, keep: u128) -> u64 {
    let memory: u128 = ic
        .canister_status(user(), id)
        .unwrap()
        .memory_size
        .0
        .try_into()
        .unwrap();
    u64::try_from(keep * (1 << 30) / (memory * fees().gib_storage_per_second)).unwrap()
}

#[test]
fn a_frozen_canister_refuses_ingress_and_calls_and_keeps_its_state() {
    let mut ic = replica();
    let id = counter(&mut ic);
    let caller = install(&mut ic, "tc_caller", no_arg());
    ic.update_one::<_, u64>(id, user(), "inc", &()).unwrap();
    // A threshold above its balance freezes it.
    let balance = ic.cycle_balance(id).unwrap();
    let seconds = threshold_for(&mut ic, id, balance + balance / 10);
    set_freezing_threshold(&mut ic, id, seconds);
    let before = ic.cycle_balance(id).unwrap();
    let r = rejected(ic.update_one::<_, u64>(id, user(), "inc", &()));
    assert_eq!(r.code, RejectCode::SysTransient, "{r}");
    assert_eq!(r.error_code, Some(ErrorCode::CanisterOutOfCycles), "{r}");
    assert!(r.message.contains("is out of cycles"), "{r}");
    // A call from another canister is rejected the same way.
    let out = ic
        .update_call(
            caller,
            user(),
            "call_raw",
            candid::encode_args((id, "inc".to_string(), no_arg(), 0u128)).unwrap(),
        )
        .unwrap();
    let (code, message) = reject_of(&out);
    assert_eq!(code, 2, "{message}");
    assert!(message.contains("is out of cycles"), "{message}");
    // Nothing was charged or changed; queries still answer; the caller
    // goes on.
    assert_eq!(ic.cycle_balance(id).unwrap(), before);
    assert_eq!(ic.query_one::<_, u64>(id, user(), "get", &()).unwrap(), 1);
    // Topped up above its threshold, it serves again.
    ic.update_one::<_, ()>(
        candid::Principal::management_canister(),
        user(),
        "provisional_top_up_canister",
        &local_replica::management::ProvisionalTopUpArgs {
            canister_id: id,
            amount: candid::Nat::from(before / 5),
        },
    )
    .unwrap();
    assert_eq!(ic.update_one::<_, u64>(id, user(), "inc", &()).unwrap(), 2);
}

/// The reject code and message of a `tc_caller` outcome.
fn reject_of(reply: &[u8]) -> (u32, String) {
    #[derive(candid::CandidType, candid::Deserialize, Debug)]
    enum Outcome {
        Reply(#[serde(with = "serde_bytes")] Vec<u8>),
        Reject { code: u32, message: String },
        NotSent(String),
    }
    match candid::decode_one::<Outcome>(reply).unwrap() {
        Outcome::Reject { code, message } => (code, message),
        Outcome::NotSent(message) => (0, message),
        other => panic!("expected a reject, found {other:?}"),
    }
}

#[test]
fn a_call_the_caller_cannot_prepay_is_not_sent() {
    let mut ic = replica();
    let callee = counter(&mut ic);
    let caller = install(&mut ic, "tc_caller", no_arg());
    let call = |ic: &mut LocalReplica| {
        let arg = candid::encode_args((callee, "inc".to_string(), no_arg(), 0u128)).unwrap();
        let len = (arg.len() + "call_raw".len()) as u64;
        (
            ic.update_call(caller, user(), "call_raw", arg).unwrap(),
            len,
        )
    };
    call(&mut ic); // warm up: the caller's heap settles
    assert_eq!(
        ic.query_one::<_, u64>(callee, user(), "get", &()).unwrap(),
        1
    );
    // Keep all but 60 billion: enough for its own update (40 billion
    // prepaid), not for a call's prepayment (callback 40 billion, a 2 MiB
    // response 2.1 billion).
    let balance = ic.cycle_balance(caller).unwrap();
    let seconds = threshold_for(&mut ic, caller, balance - 60_000_000_000);
    set_freezing_threshold(&mut ic, caller, seconds);
    let before = ic.cycle_balance(caller).unwrap();
    let (out, len) = call(&mut ic);
    let (code, message) = reject_of(&out);
    assert_eq!(code, 0, "not sent: {message}");
    // It paid for its own message only; the callee saw nothing.
    let record = ic.last_execution(caller, "call_raw").unwrap().clone();
    assert_eq!(
        ic.cycle_balance(caller).unwrap(),
        before - fees().ingress_induction_cost(len) - record.cycles
    );
    assert_eq!(
        ic.query_one::<_, u64>(callee, user(), "get", &()).unwrap(),
        1
    );
}

#[test]
fn memory_growth_needs_cycles_for_the_freezing_threshold() {
    let mut ic = replica();
    let id = counter(&mut ic);
    // A year's threshold: 64 MiB more memory needs about 250 billion.
    set_freezing_threshold(&mut ic, id, 365 * 24 * 3600);
    leave(&mut ic, id, 200_000_000_000);
    let heap = ic.heap_size(id).unwrap();
    let before = ic.cycle_balance(id).unwrap();
    assert_reject(
        ic.update_one::<_, u64>(id, user(), "alloc", &64u64),
        RejectCode::CanisterError,
        ErrorCode::InsufficientCyclesInMemoryGrow,
        "due to insufficient cycles",
    );
    // The heap is as it was; the message paid for what it executed.
    assert_eq!(ic.heap_size(id).unwrap(), heap);
    assert!(ic.cycle_balance(id).unwrap() < before);
    // A small growth is fine.
    ic.update_one::<_, u64>(id, user(), "alloc", &1u64).unwrap();
}

#[test]
fn creating_a_canister_costs_the_creation_fee() {
    let mut ic = replica();
    let caller = install(&mut ic, "tc_caller", no_arg());
    #[derive(candid::CandidType, candid::Deserialize, Debug)]
    enum Outcome {
        Reply(#[serde(with = "serde_bytes")] Vec<u8>),
        Reject { code: u32, message: String },
        NotSent(String),
    }
    // Too little for the 500 billion fee.
    let out: Outcome = ic
        .update_one(caller, user(), "create", &100_000_000_000u128)
        .unwrap();
    match out {
        Outcome::Reject { message, .. } => {
            assert!(
                message.contains("requires a fee of 500000000000"),
                "{message}"
            )
        }
        other => panic!("{other:?}"),
    }
    let out: Outcome = ic
        .update_one(caller, user(), "create", &2_000_000_000_000u128)
        .unwrap();
    let Outcome::Reply(bytes) = out else {
        panic!("{out:?}")
    };
    #[derive(candid::CandidType, candid::Deserialize)]
    struct Record {
        canister_id: candid::Principal,
    }
    let created: Record = candid::decode_one(&bytes).unwrap();
    assert_eq!(
        ic.cycle_balance(created.canister_id).unwrap(),
        2_000_000_000_000 - 500_000_000_000
    );
}

#[test]
fn memory_is_charged_over_time_and_a_canister_that_cannot_pay_is_uninstalled() {
    let mut ic = replica();
    let id = counter(&mut ic);
    ic.update_one::<_, u64>(id, user(), "alloc", &16u64)
        .unwrap();
    let memory = ic
        .canister_status(user(), id)
        .unwrap()
        .memory_size
        .0
        .try_into()
        .unwrap();
    let before = ic.cycle_balance(id).unwrap();
    ic.advance_time(Duration::from_secs(3600));
    ic.tick();
    let charged = before - ic.cycle_balance(id).unwrap();
    assert_eq!(charged, fees().storage_cost(memory, 3_600_000_000_000));
    assert!(charged > 0);
    // A canister whose balance cannot pay loses its code and its cycles:
    // at 100 billion it holds out about 4 years with 16 MiB.
    leave(&mut ic, id, 100_000_000_000);
    ic.advance_time(Duration::from_secs(5 * 365 * 24 * 3600));
    ic.tick();
    assert_eq!(ic.cycle_balance(id).unwrap(), 0);
    assert!(ic.module_hash(id).is_none());
    assert!(ic
        .logs(id)
        .iter()
        .any(|l| l.message.contains("ran out of cycles")));
}

#[test]
fn fees_can_be_turned_off() {
    let mut ic = replica_with(local_replica::Config {
        fees: FeeSchedule::free(),
        ..Default::default()
    });
    let id = counter(&mut ic);
    let before = ic.cycle_balance(id).unwrap();
    ic.update_one::<_, u64>(id, user(), "burn", &10_000u64)
        .unwrap();
    ic.advance_time(Duration::from_secs(3600));
    ic.tick();
    assert_eq!(ic.cycle_balance(id).unwrap(), before);
}
