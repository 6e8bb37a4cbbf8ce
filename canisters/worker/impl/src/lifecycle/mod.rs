//! Install, upgrade and `inspect_message`.
//!
//! The assignment and its chunks are in stable memory; the stages loaded
//! in heap are not (they are derived). After an upgrade a timer reloads
//! them in messages of their own, and the worker tells the task manager it
//! is ready again (`worker_ready`). Reports not yet delivered survive the
//! upgrade; jobs running during it end, failed, and are reported.

use ic_cdk::{init, inspect_message, post_upgrade, pre_upgrade};
use worker_api::{InitArgs, WorkerError};

use crate::state::{init_state, mutate_state, read_state};
use crate::tasks::{loads, reports};

#[init]
fn init(args: Option<InitArgs>) {
    // A deliberate guard: a worker must know its task manager.
    let Some(args) = args else {
        ic_cdk::trap("init argument: expected (opt record { task_manager = principal })");
    };
    init_state(Some(args.task_manager));
}

/// Bounded: at most `MAX_RUNNING_JOBS` jobs end and `MAX_OUTBOX` reports
/// are written.
#[pre_upgrade]
fn pre_upgrade() {
    let now = ic_cdk::api::time();
    let error = WorkerError::StepFailed {
        reason: "the worker was upgraded while the job ran".into(),
    };
    mutate_state(|s| {
        for p in s.fail_running_jobs(&error, now) {
            reports::log_dropped(&p, "the outbox is full");
        }
        s.save_outbox();
    });
}

#[post_upgrade]
fn post_upgrade(args: Option<InitArgs>) {
    init_state(args.map(|a| a.task_manager));
    let now = ic_cdk::api::time();
    mutate_state(|s| s.restore_outbox(now));
    reports::schedule();
    if read_state(|s| s.assignment().is_some()) {
        loads::start_reload();
    }
}

/// Worker methods are for canisters; ingress only from controllers.
#[inspect_message]
fn inspect_message() {
    if ic_cdk::api::is_controller(&ic_cdk::api::msg_caller()) {
        ic_cdk::api::accept_message();
    }
}
