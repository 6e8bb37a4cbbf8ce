use candid::Principal;
use ic_cdk::call::Call;
use ic_cdk::update;
use task_manager_api::ChunkRef;
use worker_api::load_stages::Response;
use worker_api::WorkerError;

use crate::guards::{authorize, Audience, Caller};
use crate::model::load::{self, LoadStart};
use crate::state::{mutate_state, read_state, ChunkKey};

#[update]
async fn load_stages(args: worker_api::load_stages::Args) -> worker_api::load_stages::Response {
    let who = Caller::current();
    let start = mutate_state(|s| {
        authorize(s, who, Audience::Manager)?;
        load::begin(s, args, who.me)
    })?;
    let (epoch, chunks) = match start {
        LoadStart::Done(report) => return Ok(report),
        LoadStart::Pull { epoch, chunks } => (epoch, chunks),
    };
    // Marks the load failed if a message of it traps.
    let mut guard = LoadGuard { epoch, done: false };
    let result = pull_and_load(epoch, chunks).await;
    guard.done = true;
    if let Err(e) = &result {
        mutate_state(|s| load::fail(s, epoch, e));
    }
    result
}

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
            mutate_state(|s| load::fail(s, self.epoch, &error));
        }
    }
}

async fn pull_and_load(epoch: u64, chunks: Vec<(ChunkKey, ChunkRef)>) -> Response {
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
    build(epoch).await?;
    Ok(read_state(|s| s.load_report.clone()))
}

/// Loads the stored assignment into tract, one phase per message: each a
/// call of the worker to itself.
pub(crate) async fn build(epoch: u64) -> Result<(), WorkerError> {
    let me = ic_cdk::api::canister_self();
    loop {
        let reply = Call::unbounded_wait(me, "load_step")
            .with_arg(epoch)
            .await
            .map_err(|e| WorkerError::StepFailed {
                reason: format!("load_step: {e}"),
            })?;
        let done: worker_api::load_step::Response =
            reply.candid().map_err(|e| WorkerError::StepFailed {
                reason: format!("load_step: {e}"),
            })?;
        if done? {
            return Ok(());
        }
    }
}

async fn fetch_chunk(tm: Principal, chunk: &ChunkRef) -> Result<Vec<u8>, WorkerError> {
    let unavailable = |reason: String| WorkerError::ChunkUnavailable {
        reason: format!("{:?} {}: {reason}", chunk.file, chunk.index),
    };
    let reply = Call::unbounded_wait(tm, "model_chunk")
        .with_arg(chunk)
        .await
        .map_err(|e| unavailable(e.to_string()))?;
    let response: task_manager_api::model_chunk::Response =
        reply.candid().map_err(|e| unavailable(e.to_string()))?;
    response
        .map(|b| b.into_vec())
        .map_err(|e| unavailable(format!("{e:?}")))
}
