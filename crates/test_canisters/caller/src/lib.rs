//! Test canister: calls other canisters and itself, with ic-cdk 0.20's
//! `Call` API, and reports what came back (reply or reject code and message).

use std::cell::Cell;
use std::future::IntoFuture;

use candid::{CandidType, Deserialize, Principal};
use ic_cdk::call::{Call, CallFailed};
use ic_cdk::{query, update};

thread_local! {
    static SELF_CALLS: Cell<u64> = const { Cell::new(0) };
}

/// The outcome of one call as the caller saw it.
#[derive(CandidType, Deserialize, Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Reply(Vec<u8>),
    Reject { code: u32, message: String },
    NotSent(String),
}

fn outcome(result: Result<ic_cdk::call::Response, CallFailed>) -> Outcome {
    match result {
        Ok(response) => Outcome::Reply(response.into_bytes()),
        Err(CallFailed::CallRejected(rejected)) => Outcome::Reject {
            code: rejected.raw_reject_code(),
            message: rejected.reject_message().to_string(),
        },
        Err(other) => Outcome::NotSent(other.to_string()),
    }
}

/// Calls `method` on `target` with a raw candid argument; waits unboundedly.
#[update]
async fn call_raw(target: Principal, method: String, arg: Vec<u8>, cycles: u128) -> Outcome {
    outcome(
        Call::unbounded_wait(target, &method)
            .with_raw_args(&arg)
            .with_cycles(cycles)
            .await,
    )
}

/// Calls `method` on `target` with a payload of `size` zero bytes (which is
/// not valid candid: the callee rejects it, if it gets that far).
#[update]
async fn call_with_payload(target: Principal, method: String, size: u64) -> Outcome {
    let payload = vec![0u8; size as usize];
    outcome(
        Call::unbounded_wait(target, &method)
            .with_raw_args(&payload)
            .await,
    )
}

/// The same with a bounded-wait (best-effort response) call.
#[update]
async fn call_bounded(target: Principal, method: String, arg: Vec<u8>, timeout: u32) -> Outcome {
    outcome(
        Call::bounded_wait(target, &method)
            .with_raw_args(&arg)
            .change_timeout(timeout)
            .await,
    )
}

/// Calls `inc` on a counter canister `times` times in sequence; returns the
/// last value.
#[update]
async fn inc_remote(target: Principal, times: u64) -> Result<u64, String> {
    let mut last = 0;
    for _ in 0..times {
        last = Call::unbounded_wait(target, "inc")
            .await
            .map_err(|e| e.to_string())?
            .candid::<u64>()
            .map_err(|e| e.to_string())?;
    }
    Ok(last)
}

/// Calls itself `depth` times, each level one self-call; returns the depth
/// reached as counted by the innermost call.
#[update]
async fn self_chain(depth: u64) -> u64 {
    SELF_CALLS.set(SELF_CALLS.get() + 1);
    if depth == 0 {
        return SELF_CALLS.get();
    }
    Call::unbounded_wait(ic_cdk::api::canister_self(), "self_chain")
        .with_arg(depth - 1)
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r.candid::<u64>().map_err(|e| e.to_string()))
        .unwrap_or_else(|e| ic_cdk::trap(e))
}

#[query]
fn self_calls() -> u64 {
    SELF_CALLS.get()
}

/// Sends `n` calls to `target.inc` at once and waits for all of them.
#[update]
async fn fan_out(target: Principal, n: u64) -> Vec<u64> {
    let calls: Vec<_> = (0..n)
        .map(|_| Call::unbounded_wait(target, "inc").into_future())
        .collect();
    let mut values = Vec::new();
    for call in calls {
        if let Ok(value) = call.await.map(|r| r.candid::<u64>()) {
            values.push(value.unwrap_or_default());
        }
    }
    values
}

/// 32 bytes from the management canister's `raw_rand`.
#[update]
async fn rand() -> Vec<u8> {
    Call::unbounded_wait(Principal::management_canister(), "raw_rand")
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r.candid::<Vec<u8>>().map_err(|e| e.to_string()))
        .unwrap_or_else(|e| ic_cdk::trap(e))
}

/// Creates a canister through the management canister with `cycles`
/// attached; the caller becomes its controller.
#[update]
async fn create(cycles: u128) -> Outcome {
    #[derive(CandidType)]
    struct Args {
        settings: Option<()>,
    }
    outcome(
        Call::unbounded_wait(Principal::management_canister(), "create_canister")
            .with_arg(Args { settings: None })
            .with_cycles(cycles)
            .await,
    )
}

/// A composite query: reads `get` of a counter canister.
#[query(composite = true)]
async fn composite_get(target: Principal) -> u64 {
    Call::unbounded_wait(target, "get")
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r.candid::<u64>().map_err(|e| e.to_string()))
        .unwrap_or_else(|e| ic_cdk::trap(e))
}

#[query]
fn balance() -> u128 {
    ic_cdk::api::canister_cycle_balance()
}
