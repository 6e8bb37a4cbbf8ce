use ic_cdk::update;

use crate::guards::{authorize, Audience, Caller};
use crate::model::load::{self, LoadStart};
use crate::state::mutate_state;
use crate::tasks::{loads, reports};

#[update]
fn load_stages(args: worker_api::load_stages::Args) -> worker_api::load_stages::Response {
    let who = Caller::current();
    let now = ic_cdk::api::time();
    let start = mutate_state(|s| {
        authorize(s, who, Audience::Manager)?;
        load::begin(s, args, who.me, now)
    });
    // Jobs of a replaced assignment were ended: their reports are due.
    reports::schedule();
    start
        .map(|start| match start {
            LoadStart::Done => {}
            LoadStart::Pull { epoch, chunks } => loads::start(epoch, chunks),
        })
        .into()
}
