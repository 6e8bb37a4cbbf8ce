//! The driver's loop of an accepted job: one `step` (a bounded-wait call
//! of the worker to itself) per message until the job ends, then exactly
//! one report to the task manager (`job_finished`, through the outbox) and
//! `end_job` to the downstream peers.
//!
//! The loop starts from a timer, not from `run_job`: `run_job` has
//! answered by then, and nothing the task manager waits on stays open
//! while the job runs.

use std::time::Duration;

use candid::Principal;
use ic_cdk::call::Call;
use task_manager_api::job_finished::JobEnd;
use worker_api::protocol::{REPORT_TIMEOUT_SECS, STEP_TIMEOUT_SECS};
use worker_api::step::{StepReport, StepResult};
use worker_api::WorkerError;

use super::reports;
use crate::model::outbox::Pending;
use crate::state::{mutate_state, read_state, State};

/// Runs run `run` of `job` (accepted and registered) from a timer.
pub fn start(job: u64, run: u64) {
    ic_cdk_timers::set_timer(Duration::ZERO, drive(job, run));
}

async fn drive(job: u64, run: u64) {
    // Reports the job however this ends, a trap included.
    let mut guard = JobGuard {
        job,
        run,
        result: None,
    };
    guard.result = Some(run_steps(job, run).await);
}

/// Steps the job until it has ended (`Ok`) or a step failed.
async fn run_steps(job: u64, run: u64) -> Result<(), WorkerError> {
    let me = ic_cdk::api::canister_self();
    let failed = |reason: String| WorkerError::StepFailed {
        reason: format!("step: {reason}"),
    };
    loop {
        let ended = read_state(|s| {
            s.jobs
                .get(&job)
                .filter(|j| j.run == run)
                .map(|j| j.finished().is_some())
        });
        match ended {
            // Ended (and reported) by someone else: a new assignment.
            None => return Err(WorkerError::UnknownJob { job }),
            Some(true) => return Ok(()),
            Some(false) => {}
        }
        let reply = Call::bounded_wait(me, "step")
            .change_timeout(STEP_TIMEOUT_SECS)
            .with_arg(job)
            .await
            .map_err(|e| failed(e.to_string()))?;
        let report: StepResult = reply.candid().map_err(|e| failed(e.to_string()))?;
        if report.into_result()? == StepReport::Finished {
            return Ok(());
        }
    }
}

struct JobGuard {
    job: u64,
    run: u64,
    /// How the loop ended; `None` if it did not (a trap).
    result: Option<Result<(), WorkerError>>,
}

impl Drop for JobGuard {
    fn drop(&mut self) {
        let result = self.result.take().unwrap_or_else(|| {
            Err(WorkerError::StepFailed {
                reason: "the driver trapped".into(),
            })
        });
        let now = ic_cdk::api::time();
        let Some((peers, dropped)) =
            mutate_state(|s| finish_job(s, self.job, self.run, result, now))
        else {
            return;
        };
        if let Some(p) = dropped {
            reports::log_dropped(&p, "the outbox is full");
        }
        // No calls while a trap is being cleaned up: the peers' caches
        // expire by themselves.
        if !ic_cdk::futures::is_recovering_from_trap() {
            for peer in peers {
                let _ = Call::bounded_wait(peer, "end_job")
                    .change_timeout(REPORT_TIMEOUT_SECS)
                    .with_arg(self.job)
                    .oneway();
            }
        }
        reports::schedule();
    }
}

/// Ends run `run` of `job` with `result` if it is still registered: drops
/// it and owes the task manager its end. The downstream peers to tell,
/// and a report dropped to make room; `None` if the job had ended already.
pub(crate) fn finish_job(
    state: &mut State,
    job: u64,
    run: u64,
    result: Result<(), WorkerError>,
    now: u64,
) -> Option<(Vec<Principal>, Option<Pending>)> {
    if state.jobs.get(&job).is_none_or(|j| j.run != run) {
        return None;
    }
    let driver = state.jobs.remove(&job)?;
    let end = match result {
        Ok(()) => match driver.outcome() {
            Some(outcome) => JobEnd::Done(outcome),
            None => JobEnd::Failed(WorkerError::StepFailed {
                reason: "the job stopped before it ended".into(),
            }),
        },
        Err(e) => JobEnd::Failed(e),
    };
    let peers = state
        .runtime
        .as_ref()
        .map(|r| r.assignment.downstream())
        .unwrap_or_default();
    let dropped = state.report_job_end(job, end, now);
    Some((peers, dropped))
}
