//! Install, upgrade and `inspect_message`.
//!
//! All state is in stable structures, so `pre_upgrade` has nothing to save
//! and `post_upgrade` reopens what is there. Running jobs go on across an
//! upgrade (their drivers report to the new code); `post_upgrade` touches
//! only those, through the running-jobs index, never every job ever made.

use ic_cdk::{init, post_upgrade};
use task_manager_api::{ConfigUpdate, InitArgs};

use crate::state::{init_state, mutate_state};
use crate::updates::set_config::apply_config;

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
    mutate_state(|state| crate::model::jobs::after_upgrade(state, now));
    crate::dispatch::start_health_checks();
    // Queued jobs wait for a free pipeline: look for one once the upgrade
    // is done.
    ic_cdk_timers::set_timer(std::time::Duration::ZERO, async {
        crate::dispatch::schedule();
    });
}

fn apply(args: InitArgs) {
    let mut update = args.config.unwrap_or_default();
    if args.default_quota.is_some() {
        update.default_quota = args.default_quota;
    }
    if update == ConfigUpdate::default() {
        return;
    }
    // A deliberate guard: a bad install argument aborts the install or
    // upgrade (and leaves the previous version running).
    if let Err(e) = mutate_state(|state| apply_config(state, update)) {
        ic_cdk::trap(format!("init argument: {e}"));
    }
}
