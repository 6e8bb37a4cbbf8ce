//! Types shared by the endpoints.

use candid::{CandidType, Deserialize, Principal};

/// A user's rate limit: a token bucket of `capacity` generated tokens that
/// refills at `refill_per_sec` tokens per second.
///
/// A request reserves its `max_new_tokens` from the bucket; what the job
/// does not generate is refunded when it ends.
#[derive(CandidType, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quota {
    /// The most tokens the bucket holds (and the largest single request).
    pub capacity: u64,
    /// Tokens added per second, up to `capacity`. Zero: a fixed allowance.
    pub refill_per_sec: u64,
}

impl Quota {
    /// The largest capacity a controller may set.
    pub const MAX_CAPACITY: u64 = 1_000_000_000;
}

/// What a user sees of themself (`register`, `whoami`) and what a
/// controller sees of a user (`user`).
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct UserProfile {
    pub principal: Principal,
    /// When the user registered (nanoseconds since the epoch, IC time).
    pub registered_at_ns: u64,
    pub banned: bool,
    /// The quota in force: the user's own when set, else the default.
    pub quota: Quota,
    /// Whether `quota` is a per-user override.
    pub quota_is_override: bool,
    /// Tokens in the bucket now.
    pub tokens_available: u64,
}

/// Who may register.
#[derive(CandidType, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegistrationPolicy {
    /// Anyone (but the anonymous principal), up to `max_users` users. New
    /// users start with [`Config::new_user_tokens`] in their bucket.
    Open { max_users: u64 },
    /// `register` records a request; a controller's `approve_users` lets
    /// the user in (with a full bucket).
    Approval,
    /// Only principals a controller listed with `approve_users`; they are
    /// users from then on, and `register` just returns their profile.
    AllowList,
}

/// The canister-wide settings controllers change.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// The quota of users without an override.
    pub default_quota: Quota,
    /// While paused, new requests are refused with `Paused`.
    pub paused: bool,
    pub registration: RegistrationPolicy,
    /// Tokens in a new user's bucket under `Open` (capped by the quota's
    /// capacity): a thousand throwaway principals do not get a thousand
    /// full buckets.
    pub new_user_tokens: u64,
    /// A bucket all users' reservations also draw from (the service's
    /// budget per second); absent: none.
    pub global_quota: Option<Quota>,
    /// Most jobs one user may have queued or running at once.
    pub max_jobs_per_user: u32,
    /// Most `generate_and_wait` calls one user may have waiting at once.
    pub max_waiters_per_user: u32,
    /// How long `generate_and_wait` waits before it answers `WaitTimedOut`
    /// (the job goes on).
    pub wait_timeout_secs: u64,
    /// Finished jobs are deleted this long after they ended.
    pub finished_job_retention_secs: u64,
    /// Each user keeps at most this many finished jobs (the oldest go).
    pub max_finished_jobs_per_user: u32,
    /// A queued job fails (refunded) after waiting this long with no
    /// healthy pipeline serving its model.
    pub queue_timeout_secs: u64,
    /// A running job whose driver has not been heard from for this long
    /// fails (refunded but for what it streamed) and its pipeline is
    /// marked unhealthy.
    pub job_stall_timeout_secs: u64,
}

/// A change of [`Config`]: absent fields stay as they are.
#[derive(CandidType, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct ConfigUpdate {
    pub default_quota: Option<Quota>,
    pub registration: Option<RegistrationPolicy>,
    pub new_user_tokens: Option<u64>,
    /// `Some(None)` removes the global bucket.
    pub global_quota: Option<Option<Quota>>,
    pub max_jobs_per_user: Option<u32>,
    pub max_waiters_per_user: Option<u32>,
    pub wait_timeout_secs: Option<u64>,
    pub finished_job_retention_secs: Option<u64>,
    pub max_finished_jobs_per_user: Option<u32>,
    pub queue_timeout_secs: Option<u64>,
    pub job_stall_timeout_secs: Option<u64>,
}

/// A page of a list: skip `start` items, return at most `length`.
#[derive(CandidType, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageArgs {
    pub start: u64,
    /// At most [`PageArgs::MAX_LENGTH`].
    pub length: u32,
}

impl PageArgs {
    /// The longest page.
    pub const MAX_LENGTH: u32 = 1_000;

    /// From the start, as long as a page may be.
    pub const FIRST: PageArgs = PageArgs {
        start: 0,
        length: PageArgs::MAX_LENGTH,
    };
}

/// A file of a model, as the registry stores it in chunks.
#[derive(CandidType, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ModelFile {
    /// `tokenizer.json`, cut into `chunk_size` pieces; its SHA-256 (in the
    /// manifest) is checked when the last piece arrives.
    Tokenizer,
    /// A stage's ONNX file; each chunk's SHA-256 is in the manifest.
    Stage(u32),
}

/// One chunk of one file of one model.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ChunkRef {
    pub model: String,
    pub file: ModelFile,
    pub index: u32,
}

/// A model in the registry.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ModelInfo {
    pub name: String,
    pub architecture: String,
    pub num_layers: u32,
    pub stages: u32,
    /// Bytes of all files (stages and tokenizer).
    pub total_bytes: u64,
    pub chunks_total: u64,
    pub chunks_present: u64,
    pub created_at_ns: u64,
}

impl ModelInfo {
    /// Every chunk is uploaded and verified.
    pub fn complete(&self) -> bool {
        self.chunks_present == self.chunks_total
    }
}

/// The argument of `install_code` (install and upgrade alike).
#[derive(CandidType, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct InitArgs {
    /// On install: the default quota (else a built-in one). On upgrade:
    /// replaces the default quota when given.
    pub default_quota: Option<Quota>,
    /// Other settings to change (install and upgrade alike).
    pub config: Option<ConfigUpdate>,
}

/// Every way a call to the task manager can fail.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// The anonymous principal cannot register or use the service.
    AnonymousCaller,
    /// The caller has not called `register`.
    NotRegistered,
    /// A controller banned the caller.
    Banned,
    /// The method is for the canister's controllers.
    NotController,
    /// A controller paused the service; try again later.
    Paused,
    /// The bucket holds `available` tokens, the request needs `requested`;
    /// enough will have refilled after `retry_after_secs`.
    RateLimited {
        retry_after_secs: u64,
        requested: u64,
        available: u64,
    },
    /// The bucket does not refill and holds fewer tokens than requested.
    QuotaExhausted {
        requested: u64,
        available: u64,
    },
    /// A single request larger than the bucket can ever hold.
    ExceedsQuota {
        requested: u64,
        capacity: u64,
    },
    /// No such user (controller methods naming a principal).
    UnknownUser {
        principal: Principal,
    },
    /// A quota outside the accepted range.
    InvalidQuota {
        reason: String,
    },
    /// The manifest does not parse or is inconsistent.
    InvalidManifest {
        reason: String,
    },
    /// Another model with this name exists (with a different manifest).
    ModelExists {
        model: String,
    },
    UnknownModel {
        model: String,
    },
    /// The file has no chunk with this index.
    UnknownChunk {
        model: String,
        file: ModelFile,
        index: u32,
        chunks: u32,
    },
    /// The chunk's size or SHA-256 is not the manifest's; it was not stored.
    ChunkMismatch {
        reason: String,
    },
    /// The assembled tokenizer is not the manifest's; its chunks were
    /// dropped, upload them again.
    TokenizerMismatch {
        reason: String,
    },
    /// The principal is already a worker.
    WorkerExists {
        worker: Principal,
    },
    /// No such worker.
    UnknownWorker {
        worker: Principal,
    },
    /// A method for workers, called by something else.
    NotAWorker,
    /// Deploying needs more idle workers than there are.
    NotEnoughWorkers {
        needed: u32,
        idle: u32,
    },
    /// The model still lacks chunks.
    ModelIncomplete {
        model: String,
        missing: u64,
    },
    /// No healthy pipeline serves the model.
    ModelNotDeployed {
        model: String,
    },
    /// The model is deployed and cannot change now.
    ModelInUse {
        model: String,
    },
    /// The request is not acceptable (parameters, sizes).
    InvalidRequest {
        reason: String,
    },
    /// The prompt is longer than a request may be.
    PromptTooLong {
        bytes: u64,
        max: u64,
    },
    UnknownJob {
        job: u64,
    },
    /// The job has ended already.
    JobFinished {
        job: u64,
    },
    /// Too many jobs are queued; try again later.
    QueueFull {
        queued: u64,
    },
    /// The job failed (generate_and_wait).
    JobFailed {
        job: u64,
        reason: String,
    },
    /// The wait was interrupted (the canister is stopping); the job goes
    /// on: poll `job`.
    WaitInterrupted {
        job: u64,
    },
    /// A call to the management canister failed.
    ManagementCallFailed {
        reason: String,
    },
    /// No worker wasm has been uploaded (`spawn_workers`).
    NoWorkerWasm,
    /// Registration needs a controller's approval: the request is
    /// recorded (or was already); try again once approved.
    ApprovalPending,
    /// Registration is by allow list, and the caller is not on it.
    NotAllowed,
    /// Registration is closed: the service has as many users (or
    /// requests waiting for approval) as it takes.
    RegistrationClosed {
        max: u64,
    },
    /// The caller has this many jobs queued or running, the most allowed.
    TooManyJobs {
        active: u32,
        max: u32,
    },
    /// The caller already has this many `generate_and_wait` calls waiting.
    TooManyWaiters {
        max: u32,
    },
    /// `generate_and_wait` waited as long as it may; the job goes on:
    /// poll `job`.
    WaitTimedOut {
        job: u64,
    },
    /// The service's own budget (all users together) is spent for now;
    /// enough will have refilled after `retry_after_secs`.
    ServiceBusy {
        retry_after_secs: u64,
    },
    /// The worker holds a stage of a pipeline: undeploy its model first.
    WorkerInUse {
        worker: Principal,
        pipeline: u32,
    },
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::ApprovalPending => write!(
                f,
                "registration needs a controller's approval; the request is recorded"
            ),
            Error::NotAllowed => write!(f, "the caller is not on the allow list"),
            Error::RegistrationClosed { max } => {
                write!(f, "registration is closed: the service takes {max}")
            }
            Error::TooManyJobs { active, max } => write!(
                f,
                "{active} jobs queued or running; at most {max} per user"
            ),
            Error::TooManyWaiters { max } => {
                write!(f, "at most {max} generate_and_wait calls may wait per user")
            }
            Error::WaitTimedOut { job } => {
                write!(f, "job {job} has not ended yet; poll `job` for it")
            }
            Error::ServiceBusy { retry_after_secs } => write!(
                f,
                "the service's budget is spent; retry in {retry_after_secs} s"
            ),
            Error::WorkerInUse { worker, pipeline } => write!(
                f,
                "worker {worker} serves pipeline {pipeline}; undeploy its model first"
            ),
            Error::AnonymousCaller => write!(f, "the anonymous principal cannot use this service"),
            Error::NotRegistered => write!(f, "the caller is not registered: call `register` first"),
            Error::Banned => write!(f, "the caller is banned"),
            Error::NotController => write!(f, "only controllers of the canister may call this"),
            Error::Paused => write!(f, "the service is paused"),
            Error::RateLimited {
                retry_after_secs,
                requested,
                available,
            } => write!(
                f,
                "rate limited: {requested} tokens requested, {available} available; retry in {retry_after_secs} s"
            ),
            Error::QuotaExhausted {
                requested,
                available,
            } => write!(
                f,
                "quota exhausted: {requested} tokens requested, {available} available and the quota does not refill"
            ),
            Error::ExceedsQuota {
                requested,
                capacity,
            } => write!(
                f,
                "{requested} tokens requested, more than the quota's capacity of {capacity}"
            ),
            Error::UnknownUser { principal } => write!(f, "no registered user {principal}"),
            Error::InvalidQuota { reason } => write!(f, "invalid quota: {reason}"),
            Error::InvalidManifest { reason } => write!(f, "invalid manifest: {reason}"),
            Error::ModelExists { model } => {
                write!(f, "a different model named {model:?} exists")
            }
            Error::UnknownModel { model } => write!(f, "no model named {model:?}"),
            Error::UnknownChunk {
                model,
                file,
                index,
                chunks,
            } => write!(
                f,
                "model {model:?} {file:?} has {chunks} chunks; there is no chunk {index}"
            ),
            Error::ChunkMismatch { reason } => write!(f, "chunk refused: {reason}"),
            Error::TokenizerMismatch { reason } => write!(f, "tokenizer refused: {reason}"),
            Error::WorkerExists { worker } => write!(f, "{worker} is already a worker"),
            Error::UnknownWorker { worker } => write!(f, "no worker {worker}"),
            Error::NotAWorker => write!(f, "only workers of this task manager may call this"),
            Error::NotEnoughWorkers { needed, idle } => {
                write!(f, "{needed} idle workers needed, {idle} available")
            }
            Error::ModelIncomplete { model, missing } => {
                write!(f, "model {model:?} still lacks {missing} chunks")
            }
            Error::ModelNotDeployed { model } => {
                write!(f, "no healthy pipeline serves model {model:?}")
            }
            Error::ModelInUse { model } => write!(f, "model {model:?} is deployed"),
            Error::InvalidRequest { reason } => write!(f, "invalid request: {reason}"),
            Error::PromptTooLong { bytes, max } => {
                write!(f, "the prompt has {bytes} bytes; at most {max} are accepted")
            }
            Error::UnknownJob { job } => write!(f, "no job {job}"),
            Error::JobFinished { job } => write!(f, "job {job} has ended"),
            Error::QueueFull { queued } => write!(f, "{queued} jobs are queued; try again later"),
            Error::JobFailed { job, reason } => write!(f, "job {job} failed: {reason}"),
            Error::WaitInterrupted { job } => {
                write!(f, "the wait for job {job} was interrupted; poll `job`")
            }
            Error::ManagementCallFailed { reason } => {
                write!(f, "management canister call failed: {reason}")
            }
            Error::NoWorkerWasm => write!(f, "no worker wasm uploaded"),
        }
    }
}

impl std::error::Error for Error {}

pub use worker_api::{ChatMessage, FinishReason, JobInstructions, Prompt, Role, Sampling};

/// A generation request.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq)]
pub struct GenerateRequest {
    pub model: String,
    pub prompt: Prompt,
    /// Reserved from the caller's bucket; what is not generated is
    /// refunded when the job ends.
    pub max_new_tokens: u32,
    pub sampling: Sampling,
    /// Stop when the text contains one of these (not included).
    pub stop_sequences: Vec<String>,
    /// 32 bytes to make sampling reproducible; absent: from `raw_rand`.
    pub seed: Option<serde_bytes::ByteBuf>,
}

/// Where a job is.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum JobStatus {
    /// Waiting for a free pipeline.
    Queued,
    /// Running on a pipeline.
    Running,
    /// Ended normally (or cancelled while running).
    Completed { finish_reason: FinishReason },
    /// Cancelled before it ran.
    Cancelled,
    /// Failed; the reservation was refunded.
    Failed { reason: String },
}

impl JobStatus {
    pub fn is_final(&self) -> bool {
        !matches!(self, JobStatus::Queued | JobStatus::Running)
    }
}

/// A job as its owner (or a controller) sees it.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct JobInfo {
    pub id: u64,
    pub owner: Principal,
    pub model: String,
    pub status: JobStatus,
    /// Text generated so far; with `from_token`, only what came after the
    /// first `from_token` generated tokens.
    pub text: String,
    /// Where `text` and `tokens` start: the offset the caller asked for.
    pub from_token: u32,
    pub generated_tokens: u32,
    pub prompt_tokens: u32,
    /// Generated token ids (when the job has ended), from `from_token`.
    pub tokens: Vec<u32>,
    pub max_new_tokens: u32,
    pub created_at_ns: u64,
    pub started_at_ns: Option<u64>,
    pub finished_at_ns: Option<u64>,
    pub pipeline: Option<u32>,
    /// Instructions measured by the workers (when the job has ended).
    pub instructions: Option<JobInstructions>,
    /// The sampler's seed: the request's, or `raw_rand`'s answer once the
    /// job started.
    pub seed: Option<serde_bytes::ByteBuf>,
}

/// A worker's state as the task manager sees it.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum WorkerState {
    /// Registered, holding nothing.
    Idle,
    /// Pulling and loading its stage.
    Loading,
    Ready,
    /// Its last load or job failed.
    Failed {
        reason: String,
    },
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct WorkerInfo {
    pub worker: Principal,
    pub state: WorkerState,
    /// The pipeline and stage it holds.
    pub pipeline: Option<u32>,
    pub stage: Option<u32>,
    /// Spawned by the task manager (rather than added).
    pub spawned: bool,
    pub added_at_ns: u64,
}

/// A pipeline: one worker per stage of a model.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct PipelineInfo {
    pub id: u32,
    pub model: String,
    /// Worker of each stage.
    pub workers: Vec<Principal>,
    /// Every worker is ready.
    pub healthy: bool,
    /// The job running on it.
    pub job: Option<u64>,
    pub jobs_completed: u64,
}

/// The worker module `spawn_workers` installs.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct WasmInfo {
    pub size: u64,
    /// Hex SHA-256 of the module as uploaded so far.
    pub sha256: String,
}
