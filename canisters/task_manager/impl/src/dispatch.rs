//! The calls to workers, as prepare → await → commit. No state borrow is
//! held across an await; each commit re-reads the state.
//!
//! Every call to a worker is bounded-wait: the worker answers at once
//! (`load_stages`, `run_job` accept or refuse) and reports the end later
//! by calling back (`worker_ready`, `job_finished`). A call that gets no
//! answer before its deadline fails the job (refunded) and marks the
//! worker failed. Nothing the task manager awaits can keep it from
//! stopping or upgrading for longer than a deadline.

use candid::Principal;
use ic_cdk::call::Call;
use worker_api::load_stages::LoadStagesArgs;
use worker_api::run_job::RunJobArgs;
use worker_api::WorkerError;

use crate::model::expiry;
use crate::model::jobs::{self, RunResult, Start};
use crate::model::workers;
use crate::state::{mutate_state, read_state};

pub use task_manager_api::timing::WORKER_CALL_TIMEOUT_SECS;

/// Starts every queued job that has a free healthy pipeline.
pub fn schedule() {
    let now = ic_cdk::api::time();
    let starts = mutate_state(|s| jobs::next_starts(s, now));
    for start in starts {
        ic_cdk::futures::spawn(run(start));
    }
}

/// Sends each worker its assignment; a refusal or a failed call marks the
/// worker failed. The load's end comes later (`worker_ready`).
pub fn load(loads: Vec<(Principal, LoadStagesArgs)>) {
    for (worker, args) in loads {
        ic_cdk::futures::spawn(async move {
            let result = call::<worker_api::load_stages::Response>(worker, "load_stages", &args)
                .await
                .and_then(|r| {
                    Result::from(r)
                        .map(|_| ())
                        .map_err(|e: worker_api::WorkerError| e.to_string())
                });
            if let Err(reason) = result {
                mutate_state(|s| workers::load_finished(s, worker, Err(reason)));
            }
        });
    }
}

async fn call<R: candid::CandidType + for<'de> candid::Deserialize<'de>>(
    to: Principal,
    method: &str,
    arg: &impl candid::CandidType,
) -> Result<R, String> {
    let reply = Call::bounded_wait(to, method)
        .change_timeout(WORKER_CALL_TIMEOUT_SECS)
        .with_arg(arg)
        .await
        .map_err(|e| format!("{method} on {to}: {e}"))?;
    reply
        .candid::<R>()
        .map_err(|e| format!("{method} on {to}: {e}"))
}

/// The job's seed: its own, or `raw_rand`'s answer, recorded in the job.
async fn seed_for(job: u64) -> Result<Vec<u8>, String> {
    if let Some(seed) = read_state(|s| s.jobs.get(&job).and_then(|j| j.seed)) {
        return Ok(seed);
    }
    let bytes: Vec<u8> = call(Principal::management_canister(), "raw_rand", &()).await?;
    mutate_state(|s| jobs::record_seed(s, job, &bytes));
    Ok(bytes)
}

async fn run(start: Start) {
    let seed = seed_for(start.job).await;
    let now = ic_cdk::api::time();
    let result = match seed {
        Err(reason) => Some(RunResult::CallFailed(format!("raw_rand: {reason}"))),
        Ok(seed) => match read_state(|s| jobs::run_args(s, start.job, seed)) {
            // Cancelled while the seed was drawn: the driver never had it.
            None => Some(RunResult::CancelledEarly),
            Some(args) => run_on(start.driver, &args).await,
        },
    };
    let now = ic_cdk::api::time().max(now);
    match result {
        Some(result) => {
            mutate_state(|s| jobs::finish_job(s, start.job, now, result));
            schedule();
        }
        None => mutate_state(|s| jobs::accepted(s, start.job, now)),
    }
}

/// `None` when the driver accepted the job (its end comes by
/// `job_finished`); else how it ended.
async fn run_on(driver: Principal, args: &RunJobArgs) -> Option<RunResult> {
    match call::<worker_api::run_job::Response>(driver, "run_job", args).await {
        Ok(r) => match Result::from(r) {
            Ok(_) => None,
            // It has the job already (an earlier call's answer was lost).
            Err(WorkerError::JobExists { .. }) => None,
            Err(
                e @ (WorkerError::TooManyJobs { .. } | WorkerError::Busy | WorkerError::NotLoaded),
            ) => Some(RunResult::Requeue(e)),
            Err(e) => Some(RunResult::Refused(e)),
        },
        Err(reason) => {
            // The driver may have the job (an answer that came too late):
            // tell it to stop.
            cancel_on(driver, args.job);
            Some(RunResult::CallFailed(reason))
        }
    }
}

/// Tells a driver to stop a job (one-way).
pub fn cancel_on(driver: Principal, job: u64) {
    let _ = Call::bounded_wait(driver, "cancel_job")
        .change_timeout(WORKER_CALL_TIMEOUT_SECS)
        .with_arg(job)
        .oneway();
}

/// How often the watchdog runs (stalled and queued jobs, expiry, failed
/// workers).
pub const HEALTH_CHECK_INTERVAL: std::time::Duration =
    std::time::Duration::from_secs(task_manager_api::timing::HEALTH_CHECK_INTERVAL_SECS);

/// The periodic pass: the watchdog's sweep, then each failed worker that
/// holds a stage is asked for its status; one that is running with its
/// stages loaded (restarted after a stop, say) serves again. Passes never
/// overlap: one that finds the previous still waiting on a worker skips.
pub async fn health_check() {
    let now = ic_cdk::api::time();
    let Some((swept, failed)) = mutate_state(|s| {
        if s.health_check_running {
            return None;
        }
        s.health_check_running = true;
        Some((expiry::sweep(s, now), workers::failed_in_pipelines(s)))
    }) else {
        return;
    };
    let _running = HealthCheck;
    for (job, driver) in swept.stalled {
        cancel_on(driver, job);
    }
    for worker in failed {
        let status = call::<worker_api::status::WorkerStatus>(worker, "status", &()).await;
        if let Ok(status) = status {
            if status.state == worker_api::status::LoadState::Ready {
                mutate_state(|s| workers::load_finished(s, worker, Ok(())));
            }
        }
    }
    schedule();
}

/// Clears the health check's flag however the pass ends.
struct HealthCheck;

impl Drop for HealthCheck {
    fn drop(&mut self) {
        mutate_state(|s| s.health_check_running = false);
    }
}

/// Starts the periodic health check (install and upgrade).
pub fn start_health_checks() {
    ic_cdk_timers::set_timer_interval(HEALTH_CHECK_INTERVAL, health_check);
}
