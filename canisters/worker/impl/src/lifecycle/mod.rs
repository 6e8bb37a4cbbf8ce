//! Install, upgrade and `inspect_message`.
//!
//! The assignment and its chunks are in stable memory; the stages loaded
//! into tract are not (they are derived). After an upgrade a timer reloads
//! them in a message of its own, and the worker tells the task manager it
//! is ready again.

use std::time::Duration;

use ic_cdk::call::Call;
use ic_cdk::{init, inspect_message, post_upgrade};
use task_manager_api::worker_ready::WorkerReadyArgs;
use worker_api::InitArgs;

use crate::model::load;
use crate::state::{init_state, mutate_state, read_state};

#[init]
fn init(args: Option<InitArgs>) {
    // A deliberate guard: a worker must know its task manager.
    let Some(args) = args else {
        ic_cdk::trap("init argument: expected (opt record { task_manager = principal })");
    };
    init_state(Some(args.task_manager));
}

#[post_upgrade]
fn post_upgrade(args: Option<InitArgs>) {
    init_state(args.map(|a| a.task_manager));
    if read_state(|s| s.assignment().is_some()) {
        ic_cdk_timers::set_timer(Duration::ZERO, reload());
    }
}

/// Loads the stored assignment again (a phase per message) and reports to
/// the task manager.
async fn reload() {
    let started = mutate_state(load::start_build);
    let result = match started {
        Ok(epoch) => crate::updates::load_stages::build(epoch).await,
        Err(e) => Err(e),
    };
    if let Err(e) = &result {
        mutate_state(|s| {
            let epoch = s.load_epoch;
            load::fail(s, epoch, e)
        });
    }
    let (tm, model, stages) = read_state(|s| {
        let a = s.assignment();
        (
            s.task_manager(),
            a.map(|a| a.model.clone()).unwrap_or_default(),
            a.map(|a| a.stages.clone()).unwrap_or_default(),
        )
    });
    let args = WorkerReadyArgs {
        model,
        stages,
        error: result.err().map(|e| e.to_string()),
    };
    let _ = Call::unbounded_wait(tm, "worker_ready")
        .with_arg(args)
        .oneway();
}

/// Worker methods are for canisters; ingress only from controllers.
#[inspect_message]
fn inspect_message() {
    if ic_cdk::api::is_controller(&ic_cdk::api::msg_caller()) {
        ic_cdk::api::accept_message();
    }
}
