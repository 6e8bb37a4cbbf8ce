//! Jobs: requests checked and paid for (a reservation of the prompt's
//! tokens, bounded from above, plus `max_new_tokens`), the fair queue,
//! the drivers' reports, settlement when a job ends, and the indexes that
//! keep every pass bounded (running jobs, each user's jobs, finished jobs
//! by age).
//!
//! Everything here is plain Rust over [`State`]; the endpoints and the
//! dispatcher ([`crate::dispatch`]) make the calls to workers and feed the
//! results back in.

use candid::{CandidType, Deserialize, Principal};
use task_manager_api::job_finished::JobEnd;
use task_manager_api::job_progress::JobProgress;
use task_manager_api::{CallbackError, Error, GenerateRequest, JobInfo, JobStatus, Prompt};
use worker_api::run_job::{JobOutcome, RunJobArgs};
use worker_api::WorkerError;

use crate::model::registry;
use crate::model::users::{authorized_user, reserve_tokens, settle_tokens};
use crate::model::workers::{mark_failed, pipeline_healthy, PipelineRecord};
use crate::records::{
    FinishRecord, InstructionsRecord, JobStatusRecord, PromptRecord, SamplingRecord,
};
use crate::state::{FinishedKey, State, UserJobKey};

/// Longest prompt (bytes of text, or of all chat messages).
pub const MAX_PROMPT_BYTES: u64 = 64 * 1024;
/// Most chat messages in a prompt.
pub const MAX_CHAT_MESSAGES: usize = 256;
/// Most jobs waiting at once.
pub const MAX_QUEUED: u64 = 10_000;
/// Tokens a chat template may add around each message (markers, role,
/// newlines), for the prompt's upper bound.
pub const CHAT_TOKENS_PER_MESSAGE: u64 = 8;
/// Tokens a tokenizer may add to any prompt (BOS, EOS).
pub const SPECIAL_TOKENS_PER_PROMPT: u64 = 2;
/// The most bytes of text one generated token may decode to, for the
/// check of a driver's report.
pub const MAX_TEXT_BYTES_PER_TOKEN: u64 = 64;
/// Stop sequences: the engine's limits, checked before a job is queued.
pub use model_format::limits::{MAX_STOP_SEQUENCES, MAX_STOP_SEQUENCE_BYTES};

/// A job as stored. Fields after `cancel_requested` came later (absent in
/// older records).
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq)]
pub struct JobRecord {
    pub owner: Principal,
    pub model: String,
    /// Dropped when the job ends.
    pub prompt: Option<PromptRecord>,
    pub sampling: SamplingRecord,
    pub max_new_tokens: u32,
    pub stop_sequences: Vec<String>,
    pub seed: Option<Vec<u8>>,
    pub status: JobStatusRecord,
    pub text: String,
    pub generated_tokens: u32,
    pub prompt_tokens: u32,
    pub tokens: Vec<u32>,
    pub created_at_ns: u64,
    pub started_at_ns: Option<u64>,
    pub finished_at_ns: Option<u64>,
    pub pipeline: Option<u32>,
    pub instructions: Option<InstructionsRecord>,
    pub cancel_requested: bool,
    /// Tokens reserved from the owner's bucket (absent: `max_new_tokens`).
    pub reserved: Option<u64>,
    /// The upper bound of the prompt's tokens that was reserved.
    pub prompt_bound: Option<u64>,
    /// When the driver was last heard from (accepted, a report).
    pub heard_at_ns: Option<u64>,
    /// Bytes of `text` after each generated token, as reported (for
    /// polling with `from_token`).
    pub text_ends: Option<Vec<u32>>,
}

impl JobRecord {
    fn reserved(&self) -> u64 {
        self.reserved.unwrap_or(u64::from(self.max_new_tokens))
    }
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
// Requests
// ---------------------------------------------------------------------

fn prompt_bytes(prompt: &Prompt) -> u64 {
    match prompt {
        Prompt::Text(t) => t.len() as u64,
        Prompt::Chat(messages) => messages
            .iter()
            .map(|m| (m.role.as_str().len() + m.content.len()) as u64)
            .sum(),
    }
}

/// An upper bound of the prompt's tokens, without the tokenizer: a token
/// of a byte-level tokenizer covers at least one byte, so the rendered
/// prompt's bytes bound its tokens. A chat adds, at most, the template's
/// own text once and [`CHAT_TOKENS_PER_MESSAGE`] per message.
pub fn prompt_bound(prompt: &Prompt, chat_template: Option<&str>) -> u64 {
    let bytes = prompt_bytes(prompt) + SPECIAL_TOKENS_PER_PROMPT;
    match prompt {
        Prompt::Text(_) => bytes,
        Prompt::Chat(m) => {
            bytes
                + m.len() as u64 * CHAT_TOKENS_PER_MESSAGE
                + chat_template.map_or(0, |t| t.len() as u64)
        }
    }
}

/// Checks what can be checked without the tokenizer (the driver checks
/// the real token count); the prompt's upper bound in tokens.
pub fn validate_request(state: &State, req: &GenerateRequest) -> Result<u64, Error> {
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
    let context = manifest.config.max_position_embeddings as u64;
    if req.max_new_tokens == 0 || u64::from(req.max_new_tokens) > context {
        return Err(invalid(format!(
            "max_new_tokens must be 1 to {context} (the model's context), found {}",
            req.max_new_tokens
        )));
    }
    // The prompt's bound and the new tokens must fit in the context: the
    // driver never runs more prompt tokens than were paid for.
    let bound = prompt_bound(&req.prompt, manifest.chat_template.as_deref());
    let room = context - u64::from(req.max_new_tokens);
    if bound > room {
        let overhead = bound - bytes;
        return Err(Error::PromptTooLong {
            bytes,
            max: room.saturating_sub(overhead),
        });
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
    Ok(bound)
}

/// Queues a job for `owner`, reserving the prompt's bound plus
/// `max_new_tokens` from its bucket. Nothing changes when it is refused.
pub fn create_job(
    state: &mut State,
    owner: Principal,
    now: u64,
    req: GenerateRequest,
) -> Result<u64, Error> {
    if state.config().paused {
        return Err(Error::Paused);
    }
    let user = authorized_user(state, owner)?;
    let bound = validate_request(state, &req)?;
    let max = state.config().max_jobs_per_user;
    if user.active_jobs() >= max {
        return Err(Error::TooManyJobs {
            active: user.active_jobs(),
            max,
        });
    }
    let queued = state.queue.len();
    if queued >= MAX_QUEUED {
        return Err(Error::QueueFull { queued });
    }
    let reserved = bound + u64::from(req.max_new_tokens);
    reserve_tokens(state, owner, now, reserved)?;
    let mut meta = state.job_meta.get().clone();
    let id = meta.next_job_id;
    meta.next_job_id += 1;
    state.job_meta.set(meta);
    state.jobs.insert(
        id,
        JobRecord {
            owner,
            model: req.model,
            prompt: Some(req.prompt.into()),
            sampling: req.sampling.into(),
            max_new_tokens: req.max_new_tokens,
            stop_sequences: req.stop_sequences,
            seed: req.seed.map(|s| s.into_vec()),
            status: JobStatusRecord::Queued,
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
            reserved: Some(reserved),
            prompt_bound: Some(bound),
            heard_at_ns: None,
            text_ends: Some(Vec::new()),
        },
    );
    state.queue.insert(id, 0);
    state.user_jobs.insert(UserJobKey { owner, job: id }, 0);
    if let Some(mut u) = state.users.get(&owner) {
        u.active_jobs = Some(u.active_jobs() + 1);
        state.users.insert(owner, u);
    }
    Ok(id)
}

// ---------------------------------------------------------------------
// Reading jobs
// ---------------------------------------------------------------------

/// A job as the API shows it; with `from_token`, only what came after
/// that many generated tokens (text and token ids).
pub fn job_info(id: u64, j: &JobRecord, from_token: u32) -> JobInfo {
    let ends = j.text_ends.as_deref().unwrap_or(&[]);
    let text_start = if from_token == 0 {
        0
    } else {
        ends.get(from_token as usize - 1)
            .map_or(j.text.len(), |&e| e as usize)
            .min(j.text.len())
    };
    let text = j.text.get(text_start..).unwrap_or("").to_string();
    let tokens = j.tokens.get(from_token as usize..).unwrap_or(&[]).to_vec();
    JobInfo {
        id,
        owner: j.owner,
        model: j.model.clone(),
        status: JobStatus::from(&j.status),
        text,
        from_token,
        generated_tokens: j.generated_tokens,
        prompt_tokens: j.prompt_tokens,
        tokens,
        max_new_tokens: j.max_new_tokens,
        created_at_ns: j.created_at_ns,
        started_at_ns: j.started_at_ns,
        finished_at_ns: j.finished_at_ns,
        pipeline: j.pipeline,
        instructions: j.instructions.map(Into::into),
        seed: j.seed.clone().map(serde_bytes::ByteBuf::from),
    }
}

/// A job, for its owner, a controller or the canister itself.
pub fn job_for(
    state: &State,
    id: u64,
    caller: Principal,
    privileged: bool,
    from_token: u32,
) -> Result<JobInfo, Error> {
    let j = state.jobs.get(&id).ok_or(Error::UnknownJob { job: id })?;
    if j.owner != caller && !privileged {
        // Someone else's job is not even said to exist.
        return Err(Error::UnknownJob { job: id });
    }
    Ok(job_info(id, &j, from_token))
}

/// The caller's jobs, newest first, older than `before` (paging).
pub fn my_jobs(state: &State, owner: Principal, before: Option<u64>, count: usize) -> Vec<JobInfo> {
    let end = UserJobKey {
        owner,
        job: before.unwrap_or(u64::MAX),
    };
    let start = UserJobKey { owner, job: 0 };
    state
        .user_jobs
        .range(start..end)
        .rev()
        .take(count)
        .filter_map(|e| {
            let id = e.key().job;
            state.jobs.get(&id).map(|j| job_info(id, &j, 0))
        })
        .collect()
}

// ---------------------------------------------------------------------
// The queue
// ---------------------------------------------------------------------

/// The queued job of `model` to run next: of the users with such jobs,
/// the one with the fewest jobs running now, then the one served longest
/// ago (or never); their oldest job. One user's many requests thus take
/// turns with everyone else's.
fn pick_job(state: &State, model: &str) -> Option<u64> {
    let mut running: std::collections::BTreeMap<Principal, u32> = Default::default();
    for e in state.running.iter() {
        if let Some(j) = state.jobs.get(e.key()) {
            *running.entry(j.owner).or_default() += 1;
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
        let Some(driver) = p.driver() else {
            continue;
        };
        state.queue.remove(&job);
        state.running.insert(job, 0);
        state.mark_served(j.owner);
        j.status = JobStatusRecord::Running;
        j.started_at_ns = Some(now);
        j.heard_at_ns = Some(now);
        j.pipeline = Some(id);
        state.jobs.insert(job, j);
        p.job = Some(job);
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
/// one from `raw_rand`), unless it has ended or been cancelled meanwhile.
pub fn run_args(state: &State, job: u64, seed: Vec<u8>) -> Option<RunJobArgs> {
    let j = state.jobs.get(&job)?;
    if j.status != JobStatusRecord::Running || j.cancel_requested {
        return None;
    }
    Some(RunJobArgs {
        job,
        prompt: j.prompt.as_ref()?.to_prompt(),
        sampling: (&j.sampling).into(),
        max_new_tokens: j.max_new_tokens,
        stop_sequences: j.stop_sequences,
        seed: serde_bytes::ByteBuf::from(seed),
    })
}

/// Records the seed a job runs with (from `raw_rand`, when it had none).
pub fn record_seed(state: &mut State, job: u64, seed: &[u8]) {
    if let Some(mut j) = state.jobs.get(&job) {
        if j.seed.is_none() {
            j.seed = Some(seed.to_vec());
            state.jobs.insert(job, j);
        }
    }
}

/// The driver accepted the job.
pub fn accepted(state: &mut State, job: u64, now: u64) {
    if let Some(mut j) = state.jobs.get(&job) {
        if j.status == JobStatusRecord::Running {
            j.heard_at_ns = Some(now);
            state.jobs.insert(job, j);
        }
    }
}

// ---------------------------------------------------------------------
// Ends
// ---------------------------------------------------------------------

/// How a running job ended.
#[derive(Debug, Clone)]
pub enum RunResult {
    /// The driver's outcome.
    Done(JobOutcome),
    /// The driver refused the job, or it failed there.
    Refused(WorkerError),
    /// A call to the driver failed (it trapped, is stopped, is gone, or
    /// did not answer in time).
    CallFailed(String),
    /// The driver was not heard from in time.
    Stalled(String),
    /// Cancelled before the driver had it.
    CancelledEarly,
    /// Its model was undeployed.
    Undeployed,
    /// The driver cannot take it now (busy, loading): back to the queue.
    Requeue(WorkerError),
}

/// Ends a job that is queued or running: status, settlement (what it
/// used is charged, the rest refunded), indexes, its pipeline freed, its
/// prompt dropped; then the owner's finished jobs beyond the per-user
/// limit are deleted.
fn end_job(state: &mut State, id: u64, mut j: JobRecord, now: u64, used: u64) {
    j.finished_at_ns = Some(now);
    j.prompt = None;
    settle_tokens(state, j.owner, now, j.reserved(), used);
    state.queue.remove(&id);
    state.running.remove(&id);
    state.finished.insert(
        FinishedKey {
            finished_at_ns: now,
            job: id,
        },
        0,
    );
    state.user_jobs.insert(
        UserJobKey {
            owner: j.owner,
            job: id,
        },
        1,
    );
    if let Some(mut u) = state.users.get(&j.owner) {
        u.active_jobs = Some(u.active_jobs().saturating_sub(1));
        state.users.insert(j.owner, u);
    }
    release_pipeline(state, j.pipeline, id, true);
    let owner = j.owner;
    state.jobs.insert(id, j);
    trim_finished(state, owner);
}

/// The worker that drives `j` now: stage 0 of its pipeline.
pub fn driver_of(state: &State, j: &JobRecord) -> Option<Principal> {
    j.pipeline
        .and_then(|id| state.pipelines.get(&id))
        .and_then(|p| p.driver())
}

/// Frees pipeline `pipeline` of job `id` (when it still runs that job),
/// counting the job as completed there or not.
fn release_pipeline(state: &mut State, pipeline: Option<u32>, id: u64, completed: bool) {
    let Some(pid) = pipeline else {
        return;
    };
    if let Some(mut p) = state.pipelines.get(&pid) {
        if p.job == Some(id) {
            p.job = None;
            if completed {
                p.jobs_completed += 1;
            }
            state.pipelines.insert(pid, p);
        }
    }
}

/// Deletes a finished job and its index entries.
pub fn delete_finished(state: &mut State, id: u64) {
    if let Some(j) = state.jobs.get(&id) {
        if !j.status.is_final() {
            return;
        }
        state.jobs.remove(&id);
        state.user_jobs.remove(&UserJobKey {
            owner: j.owner,
            job: id,
        });
        if let Some(at) = j.finished_at_ns {
            state.finished.remove(&FinishedKey {
                finished_at_ns: at,
                job: id,
            });
        }
    }
}

/// Keeps at most the configured number of `owner`'s finished jobs.
fn trim_finished(state: &mut State, owner: Principal) {
    let max = state.config().max_finished_jobs_per_user as usize;
    let finished: Vec<u64> = state
        .user_jobs
        .range(
            UserJobKey { owner, job: 0 }..=UserJobKey {
                owner,
                job: u64::MAX,
            },
        )
        .filter(|e| e.value() == 1)
        .map(|e| e.key().job)
        .collect();
    if finished.len() > max {
        for id in &finished[..finished.len() - max] {
            delete_finished(state, *id);
        }
    }
}

/// What a job that failed or stopped early is charged: what it streamed
/// (its prompt too, once a token came out of it), nothing else.
fn streamed(j: &JobRecord) -> u64 {
    if j.generated_tokens == 0 {
        0
    } else {
        u64::from(j.prompt_tokens) + u64::from(j.generated_tokens)
    }
}

/// Records the end of a running job; a worker at fault is marked failed
/// (its pipeline unhealthy). Ends of jobs that are not running change
/// nothing.
pub fn finish_job(state: &mut State, job: u64, now: u64, result: RunResult) {
    let Some(mut j) = state.jobs.get(&job) else {
        return;
    };
    if j.status != JobStatusRecord::Running {
        return;
    }
    let driver = driver_of(state, &j);
    let used;
    match result {
        RunResult::Requeue(why) => {
            if let (WorkerError::NotLoaded, Some(d)) = (&why, driver) {
                mark_failed(state, d, why.to_string());
            }
            requeue(state, job, j);
            return;
        }
        RunResult::Done(outcome) => {
            let generated = outcome.tokens.len().min(j.max_new_tokens as usize);
            // The streamed offsets stay: a client polling with `from_token`
            // gets the rest of the final text after the tokens it has seen.
            if let Some(ends) = j.text_ends.as_mut() {
                ends.truncate(generated);
                let len = outcome.text.len() as u32;
                ends.iter_mut().for_each(|e| *e = (*e).min(len));
            }
            j.text = outcome.text;
            j.tokens = outcome.tokens;
            j.tokens.truncate(generated);
            j.generated_tokens = generated as u32;
            j.prompt_tokens = outcome.prompt_tokens;
            j.instructions = Some(outcome.instructions.into());
            j.status = JobStatusRecord::Completed {
                finish_reason: FinishRecord::from(outcome.finish_reason),
            };
            used = u64::from(j.prompt_tokens) + generated as u64;
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
            j.status = JobStatusRecord::Failed {
                reason: error.to_string(),
            };
            used = streamed(&j);
        }
        RunResult::CallFailed(reason) | RunResult::Stalled(reason) => {
            if let Some(d) = driver {
                mark_failed(state, d, reason.clone());
            }
            j.status = JobStatusRecord::Failed { reason };
            used = streamed(&j);
        }
        RunResult::CancelledEarly => {
            j.status = JobStatusRecord::Completed {
                finish_reason: FinishRecord::Cancelled,
            };
            used = 0;
        }
        RunResult::Undeployed => {
            j.status = JobStatusRecord::Failed {
                reason: format!("model {:?} was undeployed", j.model),
            };
            used = streamed(&j);
        }
    }
    end_job(state, job, j, now, used);
}

/// Puts a started job back in the queue, its pipeline freed.
fn requeue(state: &mut State, id: u64, mut j: JobRecord) {
    release_pipeline(state, j.pipeline.take(), id, false);
    j.status = JobStatusRecord::Queued;
    j.started_at_ns = None;
    j.heard_at_ns = None;
    state.running.remove(&id);
    state.queue.insert(id, 0);
    state.jobs.insert(id, j);
}

/// Ends a queued job as failed, fully refunded.
pub fn fail_queued(state: &mut State, id: u64, now: u64, reason: String) {
    if let Some(mut j) = state.jobs.get(&id) {
        if j.status == JobStatusRecord::Queued {
            j.status = JobStatusRecord::Failed { reason };
            end_job(state, id, j, now, 0);
        }
    }
}

/// Checks that `worker` drives `job` now.
fn driver_check(state: &State, worker: Principal, job: u64) -> Result<JobRecord, CallbackError> {
    if !state.workers.contains_key(&worker) {
        return Err(CallbackError::NotAWorker { caller: worker });
    }
    let j = state
        .jobs
        .get(&job)
        .ok_or(CallbackError::UnknownJob { job })?;
    let driver = driver_of(state, &j);
    if driver != Some(worker) {
        return Err(CallbackError::NotTheDriver { job });
    }
    if j.status != JobStatusRecord::Running {
        return Err(CallbackError::JobNotRunning { job });
    }
    Ok(j)
}

/// The bounds every report of a job must keep.
fn check_counts(
    j: &JobRecord,
    prompt_tokens: u32,
    generated: usize,
    text: &str,
) -> Result<(), CallbackError> {
    let bad = |reason: String| Err(CallbackError::InvalidReport { reason });
    if generated > j.max_new_tokens as usize {
        return bad(format!(
            "{generated} tokens generated; the job allows {}",
            j.max_new_tokens
        ));
    }
    if let Some(bound) = j.prompt_bound {
        if u64::from(prompt_tokens) > bound {
            return bad(format!(
                "{prompt_tokens} prompt tokens; the prompt has at most {bound}"
            ));
        }
    }
    let max_text = generated as u64 * MAX_TEXT_BYTES_PER_TOKEN;
    if text.len() as u64 > max_text {
        return bad(format!(
            "{} bytes of text for {generated} tokens; at most {max_text}",
            text.len()
        ));
    }
    Ok(())
}

/// A driver's report of a running job's text so far. Stale reports (fewer
/// tokens than already recorded) are accepted and ignored.
pub fn record_progress(
    state: &mut State,
    worker: Principal,
    progress: JobProgress,
    now: u64,
) -> Result<(), CallbackError> {
    let mut j = driver_check(state, worker, progress.job)?;
    check_counts(
        &j,
        progress.prompt_tokens,
        progress.generated_tokens as usize,
        &progress.text,
    )?;
    j.heard_at_ns = Some(now);
    if progress.generated_tokens >= j.generated_tokens {
        let ends = j.text_ends.get_or_insert_with(Vec::new);
        let n = progress.generated_tokens as usize;
        let len = progress.text.len() as u32;
        if ends.len() < n {
            ends.resize(n, len);
        }
        if n > 0 {
            ends[n - 1] = len;
        }
        ends.truncate(n);
        j.text = progress.text;
        j.generated_tokens = progress.generated_tokens;
        j.prompt_tokens = progress.prompt_tokens;
    }
    state.jobs.insert(progress.job, j);
    Ok(())
}

/// The driver's report that a job ended.
pub fn record_end(
    state: &mut State,
    worker: Principal,
    job: u64,
    end: JobEnd,
    now: u64,
) -> Result<(), CallbackError> {
    let j = driver_check(state, worker, job)?;
    let result = match end {
        JobEnd::Done(outcome) => {
            check_counts(
                &j,
                outcome.prompt_tokens,
                outcome.tokens.len(),
                &outcome.text,
            )?;
            RunResult::Done(outcome)
        }
        JobEnd::Failed(e) => RunResult::Refused(e),
    };
    finish_job(state, job, now, result);
    Ok(())
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
        JobStatusRecord::Queued => {
            j.status = JobStatusRecord::Cancelled;
            end_job(state, id, j, now, 0);
            let j = state.jobs.get(&id).ok_or(Error::UnknownJob { job: id })?;
            Ok((job_info(id, &j, 0), None))
        }
        JobStatusRecord::Running => {
            j.cancel_requested = true;
            state.jobs.insert(id, j.clone());
            let driver = driver_of(state, &j);
            Ok((job_info(id, &j, 0), driver))
        }
        _ => Err(Error::JobFinished { job: id }),
    }
}

/// After an upgrade: running jobs go on (their drivers report to the new
/// code); each gets a fresh watchdog period, since the upgrade itself
/// took time. Touches the running jobs only.
pub fn after_upgrade(state: &mut State, now: u64) -> u64 {
    let running: Vec<u64> = state.running.iter().map(|e| *e.key()).collect();
    for &id in &running {
        accepted(state, id, now);
    }
    running.len() as u64
}

/// Ends the running jobs an undeploy took the pipelines of.
pub fn end_undeployed(state: &mut State, jobs: &[(u64, Principal)], now: u64) {
    for &(job, _) in jobs {
        // The pipeline is gone: end the job as though it still had one.
        finish_job(state, job, now, RunResult::Undeployed);
    }
}

#[cfg(test)]
mod tests;
