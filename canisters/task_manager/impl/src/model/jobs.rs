//! Workers, pipelines and jobs: placement of a model's stages on workers,
//! the job queue (fair between users), reservations and refunds.
//!
//! Everything here is plain Rust over [`State`]; the endpoints and the
//! dispatcher ([`crate::dispatch`]) make the calls to workers and feed the
//! results back in.

use candid::{CandidType, Deserialize, Principal};
use task_manager_api::{
    Error, GenerateRequest, JobInfo, JobInstructions, JobStatus, PipelineInfo, Prompt, Sampling,
    WorkerInfo, WorkerState,
};
use worker_api::load_stages::LoadStagesArgs;
use worker_api::run_job::{JobOutcome, RunJobArgs};
use worker_api::WorkerError;

use crate::model::registry;
use crate::model::users::{authorized_user, refund_tokens, reserve_tokens};
use crate::state::State;

/// Longest prompt (bytes of text, or of all chat messages).
pub const MAX_PROMPT_BYTES: u64 = 64 * 1024;
/// Most chat messages in a prompt.
pub const MAX_CHAT_MESSAGES: usize = 256;
/// Most jobs waiting at once.
pub const MAX_QUEUED: u64 = 10_000;
/// Stop sequences: the engine's limits, checked before a job is queued.
pub use model_format::limits::{MAX_STOP_SEQUENCES, MAX_STOP_SEQUENCE_BYTES};

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct WorkerRecord {
    pub added_at_ns: u64,
    pub spawned: bool,
    pub state: WorkerState,
    pub pipeline: Option<u32>,
    pub stage: Option<u32>,
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct PipelineRecord {
    pub model: String,
    pub workers: Vec<Principal>,
    pub job: Option<u64>,
    pub jobs_completed: u64,
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq)]
pub struct JobRecord {
    pub owner: Principal,
    pub model: String,
    pub prompt: Prompt,
    pub sampling: Sampling,
    pub max_new_tokens: u32,
    pub stop_sequences: Vec<String>,
    pub seed: Option<Vec<u8>>,
    pub status: JobStatus,
    pub text: String,
    pub generated_tokens: u32,
    pub prompt_tokens: u32,
    pub tokens: Vec<u32>,
    pub created_at_ns: u64,
    pub started_at_ns: Option<u64>,
    pub finished_at_ns: Option<u64>,
    pub pipeline: Option<u32>,
    pub instructions: Option<JobInstructions>,
    pub cancel_requested: bool,
}

#[derive(CandidType, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct JobMeta {
    pub next_job_id: u64,
    pub next_pipeline_id: u32,
}

fn invalid(reason: String) -> Error {
    Error::InvalidRequest { reason }
}

// ---------------------------------------------------------------------
// Workers and pipelines
// ---------------------------------------------------------------------

pub fn worker_info(worker: Principal, r: &WorkerRecord) -> WorkerInfo {
    WorkerInfo {
        worker,
        state: r.state.clone(),
        pipeline: r.pipeline,
        stage: r.stage,
        spawned: r.spawned,
        added_at_ns: r.added_at_ns,
    }
}

pub fn add_worker(
    state: &mut State,
    worker: Principal,
    spawned: bool,
    now: u64,
) -> Result<WorkerInfo, Error> {
    if worker == Principal::anonymous() || worker == Principal::management_canister() {
        return Err(invalid(format!("{worker} cannot be a worker")));
    }
    if state.workers.contains_key(&worker) {
        return Err(Error::WorkerExists { worker });
    }
    let record = WorkerRecord {
        added_at_ns: now,
        spawned,
        state: WorkerState::Idle,
        pipeline: None,
        stage: None,
    };
    state.workers.insert(worker, record.clone());
    Ok(worker_info(worker, &record))
}

pub fn pipeline_healthy(state: &State, p: &PipelineRecord) -> bool {
    p.workers.iter().all(|w| {
        state
            .workers
            .get(w)
            .is_some_and(|r| r.state == WorkerState::Ready)
    })
}

pub fn pipeline_info(state: &State, id: u32, p: &PipelineRecord) -> PipelineInfo {
    PipelineInfo {
        id,
        model: p.model.clone(),
        workers: p.workers.clone(),
        healthy: pipeline_healthy(state, p),
        job: p.job,
        jobs_completed: p.jobs_completed,
    }
}

pub fn pipelines(state: &State) -> Vec<PipelineInfo> {
    state
        .pipelines
        .iter()
        .map(|e| pipeline_info(state, *e.key(), &e.value()))
        .collect()
}

/// New pipelines, and the assignment each of their workers is to load.
#[derive(Debug)]
pub struct Deployment {
    pub pipelines: Vec<PipelineInfo>,
    pub loads: Vec<(Principal, LoadStagesArgs)>,
}

/// Places `pipelines` pipelines of `model` on idle workers.
pub fn deploy_model(state: &mut State, model: &str, pipelines: u32) -> Result<Deployment, Error> {
    let (record, manifest) = registry::manifest(state, model)?;
    let info = registry::model_info(state, model)?;
    if !info.complete() {
        return Err(Error::ModelIncomplete {
            model: model.to_string(),
            missing: info.chunks_total - info.chunks_present,
        });
    }
    if pipelines == 0 || pipelines > 64 {
        return Err(invalid(format!(
            "pipelines must be 1 to 64, found {pipelines}"
        )));
    }
    let stages = manifest.stages.len() as u32;
    let needed = pipelines * stages;
    let idle: Vec<Principal> = state
        .workers
        .iter()
        .filter(|e| {
            e.value().pipeline.is_none() && !matches!(e.value().state, WorkerState::Failed { .. })
        })
        .map(|e| *e.key())
        .collect();
    if (idle.len() as u32) < needed {
        return Err(Error::NotEnoughWorkers {
            needed,
            idle: idle.len() as u32,
        });
    }
    let mut created = Vec::new();
    let mut loads = Vec::new();
    for chunk in idle.chunks(stages as usize).take(pipelines as usize) {
        let mut meta = state.job_meta.get().clone();
        let id = meta.next_pipeline_id;
        meta.next_pipeline_id += 1;
        state.job_meta.set(meta);
        let workers = chunk.to_vec();
        for (stage, worker) in workers.iter().enumerate() {
            if let Some(mut w) = state.workers.get(worker) {
                w.pipeline = Some(id);
                w.stage = Some(stage as u32);
                w.state = WorkerState::Loading;
                state.workers.insert(*worker, w);
            }
            loads.push((
                *worker,
                LoadStagesArgs {
                    model: model.to_string(),
                    manifest_json: serde_bytes::ByteBuf::from(record.manifest_json.clone()),
                    stages: vec![stage as u32],
                    pipeline: workers.clone(),
                },
            ));
        }
        let p = PipelineRecord {
            model: model.to_string(),
            workers,
            job: None,
            jobs_completed: 0,
        };
        created.push(pipeline_info(state, id, &p));
        state.pipelines.insert(id, p);
    }
    Ok(Deployment {
        pipelines: created,
        loads,
    })
}

/// A worker's load ended.
pub fn load_finished(state: &mut State, worker: Principal, result: Result<(), String>) {
    if let Some(mut w) = state.workers.get(&worker) {
        if w.pipeline.is_none() {
            return;
        }
        w.state = match result {
            Ok(()) => WorkerState::Ready,
            Err(reason) => WorkerState::Failed { reason },
        };
        state.workers.insert(worker, w);
    }
}

fn mark_failed(state: &mut State, worker: Principal, reason: String) {
    if let Some(mut w) = state.workers.get(&worker) {
        w.state = WorkerState::Failed { reason };
        state.workers.insert(worker, w);
    }
}

// ---------------------------------------------------------------------
// Jobs
// ---------------------------------------------------------------------

fn prompt_bytes(prompt: &Prompt) -> u64 {
    match prompt {
        Prompt::Text(t) => t.len() as u64,
        Prompt::Chat(messages) => messages
            .iter()
            .map(|m| (m.role.len() + m.content.len()) as u64)
            .sum(),
    }
}

/// Checks what can be checked without the tokenizer (the driver checks
/// the token count).
pub fn validate_request(state: &State, req: &GenerateRequest) -> Result<(), Error> {
    let (_, manifest) = registry::manifest(state, &req.model)?;
    let bytes = prompt_bytes(&req.prompt);
    if bytes > MAX_PROMPT_BYTES {
        return Err(Error::PromptTooLong {
            bytes,
            max: MAX_PROMPT_BYTES,
        });
    }
    match &req.prompt {
        Prompt::Text(t) if t.is_empty() => return Err(invalid("the prompt is empty".into())),
        Prompt::Chat(m) if m.is_empty() || m.len() > MAX_CHAT_MESSAGES => {
            return Err(invalid(format!(
                "a chat prompt needs 1 to {MAX_CHAT_MESSAGES} messages, found {}",
                m.len()
            )))
        }
        Prompt::Chat(_) if manifest.chat_template.is_none() => {
            return Err(invalid(format!(
                "model {:?} has no chat template",
                req.model
            )))
        }
        _ => {}
    }
    let context = manifest.config.max_position_embeddings as u32;
    if req.max_new_tokens == 0 || req.max_new_tokens > context {
        return Err(invalid(format!(
            "max_new_tokens must be 1 to {context} (the model's context), found {}",
            req.max_new_tokens
        )));
    }
    if req.stop_sequences.len() > MAX_STOP_SEQUENCES
        || req
            .stop_sequences
            .iter()
            .any(|s| s.is_empty() || s.len() > MAX_STOP_SEQUENCE_BYTES)
    {
        return Err(invalid(format!(
            "at most {MAX_STOP_SEQUENCES} stop sequences of 1 to {MAX_STOP_SEQUENCE_BYTES} bytes"
        )));
    }
    if let Some(seed) = &req.seed {
        if seed.len() != 32 {
            return Err(invalid(format!(
                "the seed must have 32 bytes, found {}",
                seed.len()
            )));
        }
    }
    let s = &req.sampling;
    if s.temperature.is_some_and(|t| !(t.is_finite() && t >= 0.0)) {
        return Err(invalid("temperature must be a finite number >= 0".into()));
    }
    if s.top_p.is_some_and(|p| !(p > 0.0 && p <= 1.0)) {
        return Err(invalid("top_p must be in (0, 1]".into()));
    }
    if s.repetition_penalty
        .is_some_and(|r| !(r.is_finite() && r > 0.0))
    {
        return Err(invalid(
            "repetition_penalty must be a finite number > 0".into(),
        ));
    }
    let served = state.pipelines.iter().any(|e| e.value().model == req.model);
    if !served {
        return Err(Error::ModelNotDeployed {
            model: req.model.clone(),
        });
    }
    Ok(())
}

/// Queues a job for `owner`, reserving `max_new_tokens` from its bucket.
/// Nothing changes when it is refused.
pub fn create_job(
    state: &mut State,
    owner: Principal,
    now: u64,
    req: GenerateRequest,
) -> Result<u64, Error> {
    if state.config().paused {
        return Err(Error::Paused);
    }
    authorized_user(state, owner)?;
    validate_request(state, &req)?;
    let queued = state.queue.len();
    if queued >= MAX_QUEUED {
        return Err(Error::QueueFull { queued });
    }
    reserve_tokens(state, owner, now, u64::from(req.max_new_tokens))?;
    let mut meta = state.job_meta.get().clone();
    let id = meta.next_job_id;
    meta.next_job_id += 1;
    state.job_meta.set(meta);
    state.jobs.insert(
        id,
        JobRecord {
            owner,
            model: req.model,
            prompt: req.prompt,
            sampling: req.sampling,
            max_new_tokens: req.max_new_tokens,
            stop_sequences: req.stop_sequences,
            seed: req.seed.map(|s| s.into_vec()),
            status: JobStatus::Queued,
            text: String::new(),
            generated_tokens: 0,
            prompt_tokens: 0,
            tokens: Vec::new(),
            created_at_ns: now,
            started_at_ns: None,
            finished_at_ns: None,
            pipeline: None,
            instructions: None,
            cancel_requested: false,
        },
    );
    state.queue.insert(id, 0);
    Ok(id)
}

pub fn job_info(id: u64, j: &JobRecord) -> JobInfo {
    JobInfo {
        id,
        owner: j.owner,
        model: j.model.clone(),
        status: j.status.clone(),
        text: j.text.clone(),
        generated_tokens: j.generated_tokens,
        prompt_tokens: j.prompt_tokens,
        tokens: j.tokens.clone(),
        max_new_tokens: j.max_new_tokens,
        created_at_ns: j.created_at_ns,
        started_at_ns: j.started_at_ns,
        finished_at_ns: j.finished_at_ns,
        pipeline: j.pipeline,
        instructions: j.instructions,
    }
}

/// A job, for its owner, a controller or the canister itself.
pub fn job_for(
    state: &State,
    id: u64,
    caller: Principal,
    privileged: bool,
) -> Result<JobInfo, Error> {
    let j = state.jobs.get(&id).ok_or(Error::UnknownJob { job: id })?;
    if j.owner != caller && !privileged {
        // Someone else's job is not even said to exist.
        return Err(Error::UnknownJob { job: id });
    }
    Ok(job_info(id, &j))
}

/// The queued job of `model` to run next: of the users with such jobs,
/// the one with the fewest jobs running now, then the one served longest
/// ago (or never); their oldest job. One user's many requests thus take
/// turns with everyone else's.
fn pick_job(state: &State, model: &str) -> Option<u64> {
    let mut running: std::collections::BTreeMap<Principal, u32> = Default::default();
    for p in state.pipelines.iter() {
        if let Some(job) = p.value().job {
            if let Some(j) = state.jobs.get(&job) {
                *running.entry(j.owner).or_default() += 1;
            }
        }
    }
    let served = &state.last_served;
    let mut best: Option<((u32, u64, u64), u64)> = None;
    for entry in state.queue.iter() {
        let id = *entry.key();
        let Some(j) = state.jobs.get(&id) else {
            continue;
        };
        if j.model != model {
            continue;
        }
        let rank = (
            running.get(&j.owner).copied().unwrap_or(0),
            served.get(&j.owner).copied().unwrap_or(0),
            id,
        );
        if best.is_none_or(|(r, _)| rank < r) {
            best = Some((rank, id));
        }
    }
    best.map(|(_, id)| id)
}

/// A job to start: on which pipeline, driven by which worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Start {
    pub job: u64,
    pub pipeline: u32,
    pub driver: Principal,
}

/// Gives every free healthy pipeline a queued job of its model.
pub fn next_starts(state: &mut State, now: u64) -> Vec<Start> {
    let mut starts = Vec::new();
    let free: Vec<(u32, PipelineRecord)> = state
        .pipelines
        .iter()
        .filter(|e| e.value().job.is_none())
        .map(|e| (*e.key(), e.value()))
        .filter(|(_, p)| pipeline_healthy(state, p))
        .collect();
    for (id, mut p) in free {
        let Some(job) = pick_job(state, &p.model) else {
            continue;
        };
        let Some(mut j) = state.jobs.get(&job) else {
            continue;
        };
        state.queue.remove(&job);
        state.mark_served(j.owner);
        j.status = JobStatus::Running;
        j.started_at_ns = Some(now);
        j.pipeline = Some(id);
        state.jobs.insert(job, j);
        p.job = Some(job);
        let driver = p.workers[0];
        state.pipelines.insert(id, p);
        starts.push(Start {
            job,
            pipeline: id,
            driver,
        });
    }
    starts
}

/// The driver's arguments for a started job (`seed`: the job's own, or
/// one from `raw_rand`).
pub fn run_args(state: &State, job: u64, seed: Vec<u8>) -> Option<RunJobArgs> {
    let j = state.jobs.get(&job)?;
    Some(RunJobArgs {
        job,
        prompt: j.prompt,
        sampling: j.sampling,
        max_new_tokens: j.max_new_tokens,
        stop_sequences: j.stop_sequences,
        seed: serde_bytes::ByteBuf::from(seed),
    })
}

/// How a run ended, as the dispatcher saw it.
#[derive(Debug, Clone)]
pub enum RunResult {
    Done(JobOutcome),
    /// The worker answered with an error.
    Refused(WorkerError),
    /// The call failed (the driver trapped, is stopped, is gone).
    CallFailed(String),
}

/// Records the end of a running job: status, text, refund, the pipeline
/// freed; a worker at fault is marked failed (its pipeline unhealthy).
pub fn finish_job(state: &mut State, job: u64, now: u64, result: RunResult) {
    let Some(mut j) = state.jobs.get(&job) else {
        return;
    };
    if j.status != JobStatus::Running {
        return;
    }
    let pipeline = j
        .pipeline
        .and_then(|id| state.pipelines.get(&id).map(|p| (id, p)));
    let driver = pipeline.as_ref().map(|(_, p)| p.workers[0]);
    let refund;
    match result {
        RunResult::Done(outcome) => {
            j.text = outcome.text;
            j.generated_tokens = outcome.tokens.len() as u32;
            j.tokens = outcome.tokens;
            j.prompt_tokens = outcome.prompt_tokens;
            j.instructions = Some(outcome.instructions);
            j.status = JobStatus::Completed {
                finish_reason: outcome.finish_reason,
            };
            refund = j.max_new_tokens.saturating_sub(j.generated_tokens);
        }
        RunResult::Refused(error) => {
            match (&error, driver) {
                (WorkerError::PeerFailed { peer, reason }, _) => {
                    mark_failed(state, *peer, reason.clone())
                }
                (
                    WorkerError::StepFailed { .. }
                    | WorkerError::Engine { .. }
                    | WorkerError::NotLoaded
                    | WorkerError::Unauthorized { .. },
                    Some(d),
                ) => mark_failed(state, d, error.to_string()),
                _ => {}
            }
            if let WorkerError::PromptTooLong { tokens, .. } = &error {
                j.prompt_tokens = *tokens;
            }
            j.status = JobStatus::Failed {
                reason: error.to_string(),
            };
            refund = j.max_new_tokens;
        }
        RunResult::CallFailed(reason) => {
            if let Some(d) = driver {
                mark_failed(state, d, reason.clone());
            }
            j.status = JobStatus::Failed { reason };
            refund = j.max_new_tokens;
        }
    }
    j.finished_at_ns = Some(now);
    refund_tokens(state, j.owner, now, u64::from(refund));
    state.jobs.insert(job, j);
    if let Some((id, mut p)) = pipeline {
        if p.job == Some(job) {
            p.job = None;
            p.jobs_completed += 1;
            state.pipelines.insert(id, p);
        }
    }
}

/// A driver's report of a running job's text so far.
pub fn record_progress(
    state: &mut State,
    worker: Principal,
    progress: task_manager_api::job_progress::JobProgress,
) {
    let Some(mut j) = state.jobs.get(&progress.job) else {
        return;
    };
    let driver = j
        .pipeline
        .and_then(|id| state.pipelines.get(&id))
        .map(|p| p.workers[0]);
    if j.status != JobStatus::Running
        || driver != Some(worker)
        || progress.generated_tokens < j.generated_tokens
    {
        return;
    }
    j.text = progress.text;
    j.generated_tokens = progress.generated_tokens;
    j.prompt_tokens = progress.prompt_tokens;
    state.jobs.insert(progress.job, j);
}

/// Cancels a job. A queued one ends now (full refund); a running one is
/// flagged and its driver (returned) is told.
pub fn cancel(
    state: &mut State,
    id: u64,
    caller: Principal,
    privileged: bool,
    now: u64,
) -> Result<(JobInfo, Option<Principal>), Error> {
    let mut j = state.jobs.get(&id).ok_or(Error::UnknownJob { job: id })?;
    if j.owner != caller && !privileged {
        return Err(Error::UnknownJob { job: id });
    }
    match j.status {
        JobStatus::Queued => {
            state.queue.remove(&id);
            j.status = JobStatus::Cancelled;
            j.finished_at_ns = Some(now);
            refund_tokens(state, j.owner, now, u64::from(j.max_new_tokens));
            state.jobs.insert(id, j.clone());
            Ok((job_info(id, &j), None))
        }
        JobStatus::Running => {
            j.cancel_requested = true;
            state.jobs.insert(id, j.clone());
            let driver = j
                .pipeline
                .and_then(|p| state.pipelines.get(&p))
                .map(|p| p.workers[0]);
            Ok((job_info(id, &j), driver))
        }
        _ => Err(Error::JobFinished { job: id }),
    }
}

/// After an upgrade: jobs that were running when the canister stopped
/// without waiting for them lost their callbacks; they fail (refunded) and
/// free their pipelines.
pub fn fail_orphans(state: &mut State, now: u64) {
    let running: Vec<u64> = state
        .jobs
        .iter()
        .filter(|e| e.value().status == JobStatus::Running)
        .map(|e| *e.key())
        .collect();
    for job in running {
        if let Some(mut j) = state.jobs.get(&job) {
            j.status = JobStatus::Failed {
                reason: "interrupted by an upgrade of the task manager".into(),
            };
            j.finished_at_ns = Some(now);
            refund_tokens(state, j.owner, now, u64::from(j.max_new_tokens));
            if let Some(id) = j.pipeline {
                if let Some(mut p) = state.pipelines.get(&id) {
                    p.job = None;
                    state.pipelines.insert(id, p);
                }
            }
            state.jobs.insert(job, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::test::{user, TestEnv};
    use crate::model::registry::tests::{tiny_chunks, tiny_file};
    use crate::updates::register::register_impl;
    use worker_api::FinishReason;

    const NOW: u64 = 1_700_000_000_000_000_000;

    fn worker(n: u8) -> Principal {
        Principal::from_slice(&[0x77, n])
    }

    /// The tiny two-stage model uploaded, `pipelines` pipelines deployed
    /// and ready, users 1..=3 registered.
    fn served(pipelines: u32) -> State {
        let mut state = State::in_memory();
        registry::create_model(&mut state, tiny_file("manifest.json"), NOW).unwrap();
        for (chunk, bytes) in tiny_chunks() {
            registry::upload_chunk(&mut state, &chunk, bytes).unwrap();
        }
        for n in 0..(2 * pipelines) as u8 {
            add_worker(&mut state, worker(n), false, NOW).unwrap();
        }
        let deployment = deploy_model(&mut state, "tiny-llama", pipelines).unwrap();
        assert_eq!(deployment.loads.len(), 2 * pipelines as usize);
        assert!(deployment.pipelines.iter().all(|p| !p.healthy));
        for (w, args) in &deployment.loads {
            assert!(args.pipeline.contains(w));
            load_finished(&mut state, *w, Ok(()));
        }
        let mut env = TestEnv::new();
        for n in 1..=3 {
            register_impl(&mut state, env.as_caller(user(n))).unwrap();
        }
        state
    }

    fn req(max_new_tokens: u32) -> GenerateRequest {
        GenerateRequest {
            model: "tiny-llama".into(),
            prompt: Prompt::Text("Once upon a time".into()),
            max_new_tokens,
            sampling: Sampling::default(),
            stop_sequences: vec![],
            seed: None,
        }
    }

    fn available(state: &State, n: u8) -> u64 {
        let record = state.users.get(&user(n)).unwrap();
        record
            .bucket
            .available(&crate::model::users::quota_of(state, &record), NOW)
    }

    fn outcome(tokens: usize) -> JobOutcome {
        JobOutcome {
            text: "x".repeat(tokens),
            tokens: vec![1; tokens],
            prompt_tokens: 4,
            finish_reason: FinishReason::Eos,
            instructions: JobInstructions::default(),
        }
    }

    #[test]
    fn deploying_needs_a_complete_model_and_enough_idle_workers() {
        let mut state = State::in_memory();
        registry::create_model(&mut state, tiny_file("manifest.json"), NOW).unwrap();
        add_worker(&mut state, worker(0), false, NOW).unwrap();
        assert_eq!(
            add_worker(&mut state, worker(0), false, NOW),
            Err(Error::WorkerExists { worker: worker(0) })
        );
        assert!(matches!(
            deploy_model(&mut state, "tiny-llama", 1),
            Err(Error::ModelIncomplete { .. })
        ));
        for (chunk, bytes) in tiny_chunks() {
            registry::upload_chunk(&mut state, &chunk, bytes).unwrap();
        }
        assert!(matches!(
            deploy_model(&mut state, "tiny-llama", 1),
            Err(Error::NotEnoughWorkers { needed: 2, idle: 1 })
        ));
        assert!(state.pipelines.is_empty());
        assert!(matches!(
            deploy_model(&mut state, "nope", 1),
            Err(Error::UnknownModel { .. })
        ));
        // A deployed model cannot be deleted.
        add_worker(&mut state, worker(1), false, NOW).unwrap();
        deploy_model(&mut state, "tiny-llama", 1).unwrap();
        assert!(matches!(
            registry::delete_model(&mut state, "tiny-llama"),
            Err(Error::ModelInUse { .. })
        ));
    }

    #[test]
    fn jobs_reserve_start_on_free_pipelines_and_refund_what_they_do_not_use() {
        let mut state = served(1);
        let full = available(&state, 1);
        let a = create_job(&mut state, user(1), NOW, req(10)).unwrap();
        let b = create_job(&mut state, user(1), NOW, req(10)).unwrap();
        assert_eq!(available(&state, 1), full - 20);
        let starts = next_starts(&mut state, NOW);
        assert_eq!(
            starts,
            vec![Start {
                job: a,
                pipeline: 0,
                driver: worker(0)
            }]
        );
        assert!(
            next_starts(&mut state, NOW).is_empty(),
            "one pipeline, one job"
        );
        assert_eq!(state.jobs.get(&b).unwrap().status, JobStatus::Queued);
        // Progress from the driver only, never backwards.
        let progress = |job, n| task_manager_api::job_progress::JobProgress {
            job,
            text: "y".repeat(n as usize),
            generated_tokens: n,
            prompt_tokens: 4,
        };
        record_progress(&mut state, worker(1), progress(a, 3));
        assert_eq!(state.jobs.get(&a).unwrap().generated_tokens, 0);
        record_progress(&mut state, worker(0), progress(a, 3));
        record_progress(&mut state, worker(0), progress(a, 2));
        assert_eq!(state.jobs.get(&a).unwrap().text, "yyy");
        finish_job(&mut state, a, NOW, RunResult::Done(outcome(4)));
        let done = state.jobs.get(&a).unwrap();
        assert_eq!(
            done.status,
            JobStatus::Completed {
                finish_reason: FinishReason::Eos
            }
        );
        assert_eq!(done.generated_tokens, 4);
        assert_eq!(available(&state, 1), full - 10 - 4);
        // Finishing twice changes nothing.
        finish_job(&mut state, a, NOW, RunResult::Done(outcome(9)));
        assert_eq!(available(&state, 1), full - 10 - 4);
        assert_eq!(next_starts(&mut state, NOW)[0].job, b);
    }

    #[test]
    fn the_queue_is_fair_between_users() {
        // One pipeline: user 1 queued three jobs before user 2's one; they
        // take turns.
        let mut state = served(1);
        let hog: Vec<u64> = (0..3)
            .map(|_| create_job(&mut state, user(1), NOW, req(2)).unwrap())
            .collect();
        let other = create_job(&mut state, user(2), NOW, req(2)).unwrap();
        let mut order = Vec::new();
        while let Some(start) = next_starts(&mut state, NOW).first().cloned() {
            order.push(start.job);
            finish_job(&mut state, start.job, NOW, RunResult::Done(outcome(2)));
        }
        assert_eq!(order, vec![hog[0], other, hog[1], hog[2]]);

        // Two pipelines: one job of each user at once.
        let mut state = served(2);
        let hog: Vec<u64> = (0..3)
            .map(|_| create_job(&mut state, user(1), NOW, req(2)).unwrap())
            .collect();
        let other = create_job(&mut state, user(2), NOW, req(2)).unwrap();
        let started: Vec<u64> = next_starts(&mut state, NOW).iter().map(|s| s.job).collect();
        assert_eq!(started, vec![hog[0], other]);
    }

    #[test]
    fn failures_refund_everything_and_mark_the_worker_at_fault() {
        let mut state = served(1);
        let full = available(&state, 1);
        let job = create_job(&mut state, user(1), NOW, req(10)).unwrap();
        next_starts(&mut state, NOW);
        finish_job(
            &mut state,
            job,
            NOW,
            RunResult::Refused(WorkerError::PeerFailed {
                peer: worker(1),
                reason: "Canister is stopped".into(),
            }),
        );
        assert!(matches!(
            state.jobs.get(&job).unwrap().status,
            JobStatus::Failed { .. }
        ));
        assert_eq!(available(&state, 1), full);
        let w1 = state.workers.get(&worker(1)).unwrap();
        assert!(matches!(w1.state, WorkerState::Failed { .. }));
        assert_eq!(
            state.workers.get(&worker(0)).unwrap().state,
            WorkerState::Ready
        );
        // No healthy pipeline: new jobs wait.
        let next = create_job(&mut state, user(1), NOW, req(10)).unwrap();
        assert!(next_starts(&mut state, NOW).is_empty());
        load_finished(&mut state, worker(1), Ok(()));
        assert_eq!(next_starts(&mut state, NOW)[0].job, next);
        // A request the driver refuses fails the job, not the worker.
        finish_job(
            &mut state,
            next,
            NOW,
            RunResult::Refused(WorkerError::PromptTooLong {
                tokens: 900,
                max: 512,
            }),
        );
        assert!(pipeline_healthy(&state, &state.pipelines.get(&0).unwrap()));
        // A failed call blames the driver.
        let third = create_job(&mut state, user(1), NOW, req(10)).unwrap();
        next_starts(&mut state, NOW);
        finish_job(
            &mut state,
            third,
            NOW,
            RunResult::CallFailed("trapped".into()),
        );
        assert!(matches!(
            state.workers.get(&worker(0)).unwrap().state,
            WorkerState::Failed { .. }
        ));
        assert_eq!(available(&state, 1), full);
    }

    #[test]
    fn cancel_refunds_queued_jobs_and_flags_running_ones() {
        let mut state = served(1);
        let full = available(&state, 2);
        let running = create_job(&mut state, user(2), NOW, req(10)).unwrap();
        let queued = create_job(&mut state, user(2), NOW, req(10)).unwrap();
        next_starts(&mut state, NOW);
        assert_eq!(
            cancel(&mut state, queued, user(3), false, NOW).unwrap_err(),
            Error::UnknownJob { job: queued }
        );
        let (info, driver) = cancel(&mut state, queued, user(2), false, NOW).unwrap();
        assert_eq!((info.status, driver), (JobStatus::Cancelled, None));
        assert!(state.queue.is_empty());
        assert_eq!(available(&state, 2), full - 10);
        let (_, driver) = cancel(&mut state, running, user(2), false, NOW).unwrap();
        assert_eq!(driver, Some(worker(0)));
        assert!(state.jobs.get(&running).unwrap().cancel_requested);
        assert_eq!(
            cancel(&mut state, queued, user(2), false, NOW).unwrap_err(),
            Error::JobFinished { job: queued }
        );
    }

    #[test]
    fn bad_requests_change_nothing() {
        let mut state = served(1);
        let full = available(&state, 1);
        let mut long = req(4);
        long.prompt = Prompt::Text("x".repeat(MAX_PROMPT_BYTES as usize + 1));
        let mut seed = req(4);
        seed.seed = Some(serde_bytes::ByteBuf::from(vec![1; 31]));
        let mut unknown = req(4);
        unknown.model = "nope".into();
        let mut stops = req(4);
        stops.stop_sequences = vec![String::new()];
        for (request, expected) in [
            (long, "PromptTooLong"),
            (req(0), "InvalidRequest"),
            (req(513), "InvalidRequest"),
            (seed, "InvalidRequest"),
            (unknown, "UnknownModel"),
            (stops, "InvalidRequest"),
        ] {
            let e = create_job(&mut state, user(1), NOW, request).unwrap_err();
            assert!(format!("{e:?}").starts_with(expected), "{e:?}");
        }
        assert_eq!(
            create_job(&mut state, user(9), NOW, req(4)).unwrap_err(),
            Error::NotRegistered
        );
        state.update_config(|c| c.paused = true);
        assert_eq!(
            create_job(&mut state, user(1), NOW, req(4)).unwrap_err(),
            Error::Paused
        );
        assert!(state.jobs.is_empty() && state.queue.is_empty());
        assert_eq!(available(&state, 1), full);
    }

    #[test]
    fn running_jobs_orphaned_by_an_upgrade_fail_and_free_their_pipeline() {
        let mut state = served(1);
        let full = available(&state, 1);
        let job = create_job(&mut state, user(1), NOW, req(10)).unwrap();
        next_starts(&mut state, NOW);
        fail_orphans(&mut state, NOW);
        assert!(matches!(
            state.jobs.get(&job).unwrap().status,
            JobStatus::Failed { .. }
        ));
        assert_eq!(state.pipelines.get(&0).unwrap().job, None);
        assert_eq!(available(&state, 1), full);
    }
}
