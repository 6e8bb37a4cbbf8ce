//! A load after `load_stages` answered (or after an upgrade): pull the
//! missing chunks from the task manager, load the stages one phase per
//! message (`load_step`, a bounded-wait call of the worker to
//! itself), then owe the task manager `worker_ready`, ready or failed.

use std::time::Duration;

use candid::Principal;
use ic_cdk::call::Call;
use task_manager_api::ChunkRef;
use worker_api::load_step::LoadStepResult;
use worker_api::protocol::{CHUNK_PULL_ATTEMPTS, CHUNK_TIMEOUT_SECS, LOAD_STEP_TIMEOUT_SECS};
use worker_api::WorkerError;

use super::reports;
use crate::model::load;
use crate::state::{mutate_state, read_state, ChunkKey};

/// Pulls `chunks` and loads the assignment of `epoch`, from a timer.
pub fn start(epoch: u64, chunks: Vec<(ChunkKey, ChunkRef)>) {
    ic_cdk_timers::set_timer(Duration::ZERO, async move {
        let mut guard = LoadGuard { epoch, done: false };
        let result = pull_and_build(epoch, chunks).await;
        guard.done = true;
        end_load(epoch, result);
    });
}

/// Loads the stored assignment again (after an upgrade), from a timer.
pub fn start_reload() {
    ic_cdk_timers::set_timer(Duration::ZERO, async {
        match mutate_state(load::start_build) {
            Ok(epoch) => {
                let mut guard = LoadGuard { epoch, done: false };
                let result = build(epoch).await;
                guard.done = true;
                end_load(epoch, result);
            }
            Err(e) => {
                let epoch = read_state(|s| s.load_epoch);
                end_load(epoch, Err(e));
            }
        }
    });
}

/// Records how the load of `epoch` ended and owes the task manager
/// `worker_ready` (unless a newer assignment replaced it).
fn end_load(epoch: u64, result: Result<(), WorkerError>) {
    let now = ic_cdk::api::time();
    let dropped = mutate_state(|s| {
        if let Err(e) = &result {
            load::fail(s, epoch, e);
        }
        s.report_load_end(epoch, result.err().map(|e| e.to_string()), now)
    });
    if let Some(p) = dropped {
        reports::log_dropped(&p, "the outbox is full");
    }
    reports::schedule();
}

/// Marks the load failed (and reports it) if a message of it traps.
struct LoadGuard {
    epoch: u64,
    done: bool,
}

impl Drop for LoadGuard {
    fn drop(&mut self) {
        if !self.done {
            let error = WorkerError::StepFailed {
                reason: "a message of the load trapped".into(),
            };
            end_load(self.epoch, Err(error));
        }
    }
}

async fn pull_and_build(epoch: u64, chunks: Vec<(ChunkKey, ChunkRef)>) -> Result<(), WorkerError> {
    let tm = read_state(|s| s.task_manager());
    for (key, chunk) in chunks {
        let bytes = fetch_chunk(tm, &chunk).await?;
        mutate_state(|s| load::store_chunk(s, epoch, key, bytes))?;
    }
    let epoch = mutate_state(|s| {
        if s.load_epoch != epoch {
            return Err(WorkerError::InvalidAssignment {
                reason: "a newer assignment replaced this one while it loaded".into(),
            });
        }
        load::start_build(s)
    })?;
    build(epoch).await
}

/// Loads the stored assignment, one phase per message: each a
/// call of the worker to itself.
async fn build(epoch: u64) -> Result<(), WorkerError> {
    let me = ic_cdk::api::canister_self();
    let failed = |reason: String| WorkerError::StepFailed {
        reason: format!("load_step: {reason}"),
    };
    loop {
        let reply = Call::bounded_wait(me, "load_step")
            .change_timeout(LOAD_STEP_TIMEOUT_SECS)
            .with_arg(epoch)
            .await
            .map_err(|e| failed(e.to_string()))?;
        let done: LoadStepResult = reply.candid().map_err(|e| failed(e.to_string()))?;
        if done.into_result()? {
            return Ok(());
        }
    }
}

/// One chunk from the task manager; a failed call is tried again (up to
/// `CHUNK_PULL_ATTEMPTS` calls), a refusal is not.
async fn fetch_chunk(tm: Principal, chunk: &ChunkRef) -> Result<Vec<u8>, WorkerError> {
    let unavailable = |reason: String| WorkerError::ChunkUnavailable {
        reason: format!("{:?} {}: {reason}", chunk.file, chunk.index),
    };
    let mut last = String::new();
    for _ in 0..CHUNK_PULL_ATTEMPTS {
        let reply = match Call::bounded_wait(tm, "model_chunk")
            .change_timeout(CHUNK_TIMEOUT_SECS)
            .with_arg(chunk)
            .await
        {
            Ok(reply) => reply,
            Err(e) => {
                last = e.to_string();
                continue;
            }
        };
        let response: task_manager_api::model_chunk::Response =
            reply.candid().map_err(|e| unavailable(e.to_string()))?;
        return response
            .into_result()
            .map(|b| b.into_vec())
            .map_err(|e| unavailable(format!("{e:?}")));
    }
    Err(unavailable(format!(
        "{CHUNK_PULL_ATTEMPTS} calls failed, the last: {last}"
    )))
}
