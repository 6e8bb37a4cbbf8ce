//! Install, upgrade and `inspect_message`.
//!
//! All state is in stable structures, so `pre_upgrade` has nothing to save
//! and `post_upgrade` reopens what is there.

use ic_cdk::{init, post_upgrade};
use task_manager_api::InitArgs;

use crate::model::rate_limit::validate_quota;
use crate::state::{init_state, mutate_state};

pub mod inspect_message;

#[init]
fn init(args: Option<InitArgs>) {
    init_state();
    apply(args.unwrap_or_default());
    crate::dispatch::start_health_checks();
}

#[post_upgrade]
fn post_upgrade(args: Option<InitArgs>) {
    init_state();
    apply(args.unwrap_or_default());
    let now = ic_cdk::api::time();
    mutate_state(|state| crate::model::jobs::fail_orphans(state, now));
    crate::dispatch::start_health_checks();
    // Queued jobs wait for a free pipeline: look for one once the upgrade
    // is done.
    ic_cdk_timers::set_timer(std::time::Duration::ZERO, async {
        crate::dispatch::schedule();
    });
}

fn apply(args: InitArgs) {
    if let Some(quota) = args.default_quota {
        // A deliberate guard: a bad install argument aborts the install or
        // upgrade (and leaves the previous version running).
        if let Err(e) = validate_quota(&quota) {
            ic_cdk::trap(format!("init argument: {e}"));
        }
        mutate_state(|state| state.update_config(|config| config.default_quota = quota));
    }
}
