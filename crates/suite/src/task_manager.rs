//! A typed client of the task manager over any [`Transport`]: each method
//! encodes its candid argument, makes the call and decodes the named
//! result, whose error becomes a [`SuiteError`] (`User`, `Admin`).
//!
//! Beyond single calls: [`TaskManager::stream_job`] polls `job` with
//! `from_token`, so each answer carries only the text generated since the
//! last one, and [`TaskManager::wait_deployed`] polls until a model's
//! pipelines are healthy. The parallel, resumable upload is in
//! [`crate::upload`].

use std::time::{Duration, Instant};

use candid::{CandidType, Deserialize, Nat, Principal};
use serde_bytes::ByteBuf;
use task_manager_api::create_model::CreateModelArgs;
use task_manager_api::deploy_model::DeployModelArgs;
use task_manager_api::job::JobArgs;
use task_manager_api::missing_chunks::{MissingChunksArgs, MissingChunksPage};
use task_manager_api::models::ModelsPage;
use task_manager_api::my_jobs::MyJobsArgs;
use task_manager_api::pipelines::PipelinesPage;
use task_manager_api::spawn_workers::SpawnWorkersArgs;
use task_manager_api::upload_chunk::{UploadChunkArgs, UploadProgress};
use task_manager_api::upload_worker_wasm::UploadWorkerWasmArgs;
use task_manager_api::workers::WorkersPage;
use task_manager_api::{
    AdminError, ChunkRef, GenerateRequest, JobInfo, JobStatus, ModelInfo, PageArgs, PipelineInfo,
    UserError, UserProfile, WasmInfo, WorkerInfo, WorkerState,
};

use crate::transport::Transport;
use crate::{Result, SuiteError};

/// Update or query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Update,
    Query,
}

/// The task manager `id`, called through `transport`.
pub struct TaskManager<'t> {
    transport: &'t dyn Transport,
    id: Principal,
}

impl<'t> TaskManager<'t> {
    pub fn new(transport: &'t dyn Transport, id: Principal) -> TaskManager<'t> {
        TaskManager { transport, id }
    }

    pub fn id(&self) -> Principal {
        self.id
    }

    pub fn transport(&self) -> &'t dyn Transport {
        self.transport
    }

    /// One call whose answer is a named result with error `E`.
    fn call<E, A, R>(&self, kind: Kind, method: &str, arg: &A) -> Result<R>
    where
        E: CandidType + for<'de> Deserialize<'de> + Into<SuiteError>,
        A: CandidType,
        R: CandidType + for<'de> Deserialize<'de>,
    {
        let bytes = candid::encode_one(arg).map_err(|e| SuiteError::Candid {
            method: method.to_string(),
            reason: format!("encoding the argument: {e}"),
        })?;
        let reply = match kind {
            Kind::Update => self.transport.update(self.id, method, bytes),
            Kind::Query => self.transport.query(self.id, method, bytes),
        }
        .map_err(|source| SuiteError::Call {
            method: method.to_string(),
            source,
        })?;
        let result: std::result::Result<R, E> =
            candid::decode_one(&reply).map_err(|e| SuiteError::Candid {
                method: method.to_string(),
                reason: format!(
                    "the reply is not a {}: {e}",
                    std::any::type_name::<std::result::Result<R, E>>()
                ),
            })?;
        result.map_err(Into::into)
    }

    fn admin<A: CandidType, R: CandidType + for<'de> Deserialize<'de>>(
        &self,
        kind: Kind,
        method: &str,
        arg: &A,
    ) -> Result<R> {
        self.call::<AdminError, _, _>(kind, method, arg)
    }

    fn user<A: CandidType, R: CandidType + for<'de> Deserialize<'de>>(
        &self,
        kind: Kind,
        method: &str,
        arg: &A,
    ) -> Result<R> {
        self.call::<UserError, _, _>(kind, method, arg)
    }

    /// Registers the model of `manifest_json` (the same manifest again
    /// returns the model as it is: uploads resume).
    pub fn create_model(&self, manifest_json: Vec<u8>) -> Result<ModelInfo> {
        self.admin(
            Kind::Update,
            "create_model",
            &CreateModelArgs {
                manifest_json: ByteBuf::from(manifest_json),
            },
        )
    }

    /// Every chunk of `model` the registry lacks (all pages).
    pub fn missing_chunks(&self, model: &str) -> Result<Vec<ChunkRef>> {
        let mut missing: Vec<ChunkRef> = Vec::new();
        loop {
            let page: MissingChunksPage = self.admin(
                Kind::Query,
                "missing_chunks",
                &MissingChunksArgs {
                    model: model.to_string(),
                    start: missing.len() as u64,
                    length: PageArgs::MAX_LENGTH,
                },
            )?;
            let done = page.chunks.is_empty()
                || missing.len() as u64 + page.chunks.len() as u64 >= page.total;
            missing.extend(page.chunks);
            if done {
                return Ok(missing);
            }
        }
    }

    pub fn upload_chunk(&self, chunk: ChunkRef, bytes: ByteBuf) -> Result<UploadProgress> {
        self.admin(
            Kind::Update,
            "upload_chunk",
            &UploadChunkArgs { chunk, bytes },
        )
    }

    /// One piece of the worker module at `offset` (0 starts over).
    pub fn upload_worker_wasm(&self, offset: u64, bytes: ByteBuf) -> Result<WasmInfo> {
        self.admin(
            Kind::Update,
            "upload_worker_wasm",
            &UploadWorkerWasmArgs { offset, bytes },
        )
    }

    pub fn spawn_workers(&self, count: u32, cycles_per_worker: u128) -> Result<Vec<WorkerInfo>> {
        self.admin(
            Kind::Update,
            "spawn_workers",
            &SpawnWorkersArgs {
                count,
                cycles_per_worker: Nat::from(cycles_per_worker),
            },
        )
    }

    pub fn add_worker(&self, worker: Principal) -> Result<WorkerInfo> {
        self.admin(Kind::Update, "add_worker", &worker)
    }

    pub fn deploy_model(&self, model: &str, pipelines: u32) -> Result<Vec<PipelineInfo>> {
        self.admin(
            Kind::Update,
            "deploy_model",
            &DeployModelArgs {
                model: model.to_string(),
                pipelines,
            },
        )
    }

    /// Every worker (controllers).
    pub fn workers(&self) -> Result<Vec<WorkerInfo>> {
        let mut out = Vec::new();
        loop {
            let page: WorkersPage = self.admin(
                Kind::Query,
                "workers",
                &PageArgs {
                    start: out.len() as u64,
                    length: PageArgs::MAX_LENGTH,
                },
            )?;
            let done = page.workers.is_empty()
                || out.len() as u64 + page.workers.len() as u64 >= page.total;
            out.extend(page.workers);
            if done {
                return Ok(out);
            }
        }
    }

    /// Every pipeline.
    pub fn pipelines(&self) -> Result<Vec<PipelineInfo>> {
        let mut out = Vec::new();
        loop {
            let page: PipelinesPage = self.user(
                Kind::Query,
                "pipelines",
                &PageArgs {
                    start: out.len() as u64,
                    length: PageArgs::MAX_LENGTH,
                },
            )?;
            let done = page.pipelines.is_empty()
                || out.len() as u64 + page.pipelines.len() as u64 >= page.total;
            out.extend(page.pipelines);
            if done {
                return Ok(out);
            }
        }
    }

    /// Every model in the registry.
    pub fn models(&self) -> Result<Vec<ModelInfo>> {
        let mut out = Vec::new();
        loop {
            let page: ModelsPage = self.user(
                Kind::Query,
                "models",
                &PageArgs {
                    start: out.len() as u64,
                    length: PageArgs::MAX_LENGTH,
                },
            )?;
            let done =
                page.models.is_empty() || out.len() as u64 + page.models.len() as u64 >= page.total;
            out.extend(page.models);
            if done {
                return Ok(out);
            }
        }
    }

    pub fn register(&self) -> Result<UserProfile> {
        self.user(Kind::Update, "register", &())
    }

    pub fn whoami(&self) -> Result<UserProfile> {
        self.user(Kind::Query, "whoami", &())
    }

    /// Starts a job; returns its id.
    pub fn generate(&self, request: &GenerateRequest) -> Result<u64> {
        self.user(Kind::Update, "generate", request)
    }

    /// The job, with only the text and tokens after `from_token` generated
    /// tokens when given.
    pub fn job(&self, job: u64, from_token: Option<u32>) -> Result<JobInfo> {
        self.user(Kind::Query, "job", &JobArgs { job, from_token })
    }

    /// The caller's jobs, newest first: at most `count` with ids below
    /// `before`.
    pub fn my_jobs(&self, before: Option<u64>, count: u32) -> Result<Vec<JobInfo>> {
        self.user(Kind::Query, "my_jobs", &MyJobsArgs { before, count })
    }

    /// Polls `job` until it ends, passing each piece of new text to
    /// `on_text` as it arrives (`from_token` = the tokens seen so far, so
    /// each answer carries only what is new). Returns the job as it ended,
    /// with its whole text; a failed job is a [`SuiteError::JobFailed`].
    pub fn stream_job(
        &self,
        job: u64,
        poll: Duration,
        on_text: &mut dyn FnMut(&str),
    ) -> Result<JobInfo> {
        let mut seen: u32 = 0;
        let mut text = String::new();
        loop {
            let info = self.job(job, Some(seen))?;
            if !info.text.is_empty() {
                on_text(&info.text);
                text.push_str(&info.text);
            }
            seen = seen.max(info.generated_tokens);
            if info.status.is_final() {
                if let JobStatus::Failed { reason } = &info.status {
                    return Err(SuiteError::JobFailed {
                        job,
                        reason: reason.clone(),
                    });
                }
                // The task manager keeps the text's offsets per token only
                // while the job runs: once it has ended, `from_token` > 0
                // answers no text at all. The whole job, once, gives what
                // came after the last progress report.
                let whole = if seen > 0 { self.job(job, None)? } else { info };
                if let Some(tail) = whole.text.strip_prefix(text.as_str()) {
                    if !tail.is_empty() {
                        on_text(tail);
                    }
                }
                return Ok(whole);
            }
            self.transport.pause(poll);
        }
    }

    /// Polls until every pipeline of `model` is healthy; fails as soon as
    /// a worker of one of them has failed, or after `timeout`.
    pub fn wait_deployed(
        &self,
        model: &str,
        poll: Duration,
        timeout: Duration,
    ) -> Result<Vec<PipelineInfo>> {
        let started = Instant::now();
        loop {
            let pipelines: Vec<PipelineInfo> = self
                .pipelines()?
                .into_iter()
                .filter(|p| p.model == model)
                .collect();
            if pipelines.is_empty() {
                return Err(SuiteError::Model(format!(
                    "no pipeline serves {model}: deploy it first"
                )));
            }
            if pipelines.iter().all(|p| p.healthy) {
                return Ok(pipelines);
            }
            let workers = self.workers()?;
            let failed: Vec<String> = workers
                .iter()
                .filter(|w| pipelines.iter().any(|p| p.workers.contains(&w.worker)))
                .filter_map(|w| match &w.state {
                    WorkerState::Failed { reason } => Some(format!("{}: {reason}", w.worker)),
                    _ => None,
                })
                .collect();
            if !failed.is_empty() {
                return Err(SuiteError::Model(format!(
                    "deploying {model}: worker(s) failed to load their stages: {}",
                    failed.join("; ")
                )));
            }
            if started.elapsed() >= timeout {
                return Err(SuiteError::Timeout(format!(
                    "{model}'s pipelines were not healthy after {:.0} s",
                    timeout.as_secs_f64()
                )));
            }
            self.transport.pause(poll);
        }
    }
}
