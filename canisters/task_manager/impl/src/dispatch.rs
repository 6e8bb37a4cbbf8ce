//! The calls to workers, as prepare → await → commit: loads after
//! `deploy_model`, and jobs on free pipelines. No state borrow is held
//! across an await; each commit re-reads the state.

use candid::Principal;
use ic_cdk::call::Call;
use worker_api::load_stages::LoadStagesArgs;
use worker_api::run_job::RunJobArgs;

use crate::model::jobs::{self, RunResult, Start};
use crate::state::{mutate_state, read_state};

/// Starts every queued job that has a free healthy pipeline.
pub fn schedule() {
    let now = ic_cdk::api::time();
    let starts = mutate_state(|s| jobs::next_starts(s, now));
    for start in starts {
        ic_cdk::futures::spawn(run(start));
    }
}

/// Sends each worker its assignment; records the outcome.
pub fn load(loads: Vec<(Principal, LoadStagesArgs)>) {
    for (worker, args) in loads {
        ic_cdk::futures::spawn(async move {
            let result = call::<worker_api::load_stages::Response>(worker, "load_stages", &args)
                .await
                .and_then(|r| r.map(|_| ()).map_err(|e| e.to_string()));
            mutate_state(|s| jobs::load_finished(s, worker, result));
            schedule();
        });
    }
}

async fn call<R: candid::CandidType + for<'de> candid::Deserialize<'de>>(
    to: Principal,
    method: &str,
    arg: &impl candid::CandidType,
) -> Result<R, String> {
    let reply = Call::unbounded_wait(to, method)
        .with_arg(arg)
        .await
        .map_err(|e| format!("{method} on {to}: {e}"))?;
    reply
        .candid::<R>()
        .map_err(|e| format!("{method} on {to}: {e}"))
}

async fn seed_for(job: u64) -> Result<Vec<u8>, String> {
    if let Some(seed) = read_state(|s| s.jobs.get(&job).and_then(|j| j.seed)) {
        return Ok(seed);
    }
    let bytes: Vec<u8> = call(Principal::management_canister(), "raw_rand", &()).await?;
    Ok(bytes)
}

async fn run(start: Start) {
    let result = match seed_for(start.job).await {
        Err(reason) => RunResult::CallFailed(format!("raw_rand: {reason}")),
        Ok(seed) => match read_state(|s| jobs::run_args(s, start.job, seed)) {
            None => return,
            Some(args) => run_on(start.driver, &args).await,
        },
    };
    let now = ic_cdk::api::time();
    mutate_state(|s| jobs::finish_job(s, start.job, now, result));
    schedule();
}

async fn run_on(driver: Principal, args: &RunJobArgs) -> RunResult {
    match call::<worker_api::run_job::Response>(driver, "run_job", args).await {
        Ok(Ok(outcome)) => RunResult::Done(outcome),
        Ok(Err(e)) => RunResult::Refused(e),
        Err(reason) => RunResult::CallFailed(reason),
    }
}

/// Tells a running job's driver to stop it (one-way).
pub fn cancel_on(driver: Principal, job: u64) {
    let _ = Call::unbounded_wait(driver, "cancel_job")
        .with_arg(job)
        .oneway();
}

/// How often failed workers are asked whether they serve again.
pub const HEALTH_CHECK_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);

/// Asks each failed worker that holds a stage for its status; one that is
/// running with its stages loaded (restarted after a stop, say) serves
/// again.
pub async fn check_failed_workers() {
    let failed: Vec<Principal> = read_state(|s| {
        s.workers
            .iter()
            .filter(|e| {
                e.value().pipeline.is_some()
                    && matches!(
                        e.value().state,
                        task_manager_api::WorkerState::Failed { .. }
                    )
            })
            .map(|e| *e.key())
            .collect()
    });
    for worker in failed {
        let status = call::<worker_api::status::WorkerStatus>(worker, "status", &()).await;
        if let Ok(status) = status {
            if status.state == worker_api::status::LoadState::Ready {
                mutate_state(|s| jobs::load_finished(s, worker, Ok(())));
            }
        }
    }
    schedule();
}

/// Starts the periodic health check (install and upgrade).
pub fn start_health_checks() {
    ic_cdk_timers::set_timer_interval(HEALTH_CHECK_INTERVAL, check_failed_workers);
}
