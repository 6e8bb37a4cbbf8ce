//! Delivers the outbox: each due report is one bounded-wait call to the
//! task manager; the answer goes back to [`crate::model::outbox`], which
//! says when to try again. One timer, armed for the next due report.

use ic_cdk::call::{Call, CallFailed, Response};
use task_manager_api::callbacks::CallbackResult;
use worker_api::protocol::REPORT_TIMEOUT_SECS;

use super::{arm, Alarm};
use crate::model::outbox::{Delivery, Pending, Send};
use crate::state::{mutate_state, read_state};

thread_local! {
    static ALARM: Alarm = const { Alarm::new(None) };
}

/// Arms the delivery timer for the next due report, if any.
pub fn schedule() {
    if let Some(at) = read_state(|s| s.outbox.next_due()) {
        arm(&ALARM, at, flush);
    }
}

/// Logs a report that was dropped without an answer.
pub fn log_dropped(p: &Pending, why: &str) {
    ic_cdk::println!(
        "report {:?} ({}) dropped after {} calls: {why}",
        p.key,
        p.method,
        p.attempts
    );
}

async fn flush() {
    ALARM.set(None);
    let now = ic_cdk::api::time();
    let due = mutate_state(|s| s.outbox.take_due(now));
    for p in &due.expired {
        log_dropped(p, "never answered");
    }
    for send in due.sends {
        // Each in its own task: a slow answer does not hold the others.
        ic_cdk::futures::spawn(deliver(send));
    }
    schedule();
}

async fn deliver(send: Send) {
    let tm = read_state(|s| s.task_manager());
    let result = Call::bounded_wait(tm, &send.method)
        .change_timeout(REPORT_TIMEOUT_SECS)
        .take_raw_args(send.arg)
        .await;
    let delivery = delivery(result);
    if let Delivery::Refused(reason) = &delivery {
        ic_cdk::println!(
            "report {:?} ({}) refused by the task manager: {reason}",
            send.key,
            send.method
        );
    }
    let now = ic_cdk::api::time();
    mutate_state(|s| s.outbox.settle(send.id, delivery, now));
    schedule();
}

/// What a call's result means for the report.
fn delivery(result: Result<Response, CallFailed>) -> Delivery {
    match result {
        Err(e) => Delivery::Failed(e.to_string()),
        Ok(reply) => match reply.candid::<CallbackResult>() {
            Ok(answer) => match answer.into_result() {
                Ok(()) => Delivery::Accepted,
                Err(e) => Delivery::Refused(format!("{e:?}")),
            },
            Err(e) => Delivery::Refused(format!("an answer that does not decode: {e}")),
        },
    }
}
