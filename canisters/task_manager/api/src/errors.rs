//! Errors per audience. A user's client decodes [`UserError`], an
//! operator's tools [`AdminError`], workers
//! [`CallbackError`](crate::CallbackError): a new admin error never changes
//! what a user's client must decode. Each ends with a `GenericError
//! { code; message }` that takes whatever the audience has no variant for.
//!
//! Inside the canister every refusal is an [`Error`]; the endpoints convert
//! it to their audience's type.

use candid::{CandidType, Deserialize, Principal};

use crate::{Error, ModelFile};

/// Why a user's call (register, generate, jobs, model downloads) was refused.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum UserError {
    /// The anonymous principal cannot register or use the service.
    AnonymousCaller,
    /// The caller has not called `register`.
    NotRegistered,
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
    /// A controller banned the caller.
    Banned,
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
    /// The service's own budget (all users together) is spent for now;
    /// enough will have refilled after `retry_after_secs`.
    ServiceBusy {
        retry_after_secs: u64,
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
    /// Too many jobs are queued; try again later.
    QueueFull {
        queued: u64,
    },
    /// The prompt is longer than a request may be.
    PromptTooLong {
        bytes: u64,
        max: u64,
    },
    /// The request is not acceptable (parameters, sizes).
    InvalidRequest {
        reason: String,
    },
    UnknownModel {
        model: String,
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
    /// The file has no chunk with this index.
    UnknownChunk {
        model: String,
        file: ModelFile,
        index: u32,
        chunks: u32,
    },
    UnknownJob {
        job: u64,
    },
    /// The job has ended already.
    JobFinished {
        job: u64,
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
    /// `generate_and_wait` waited as long as it may; the job goes on:
    /// poll `job`.
    WaitTimedOut {
        job: u64,
    },
    /// Any other refusal: `code` is stable (see [`Error::code`]), the
    /// message says what went wrong.
    GenericError {
        code: u32,
        message: String,
    },
}

impl From<Error> for UserError {
    fn from(e: Error) -> UserError {
        match e {
            Error::AnonymousCaller => UserError::AnonymousCaller,
            Error::NotRegistered => UserError::NotRegistered,
            Error::ApprovalPending => UserError::ApprovalPending,
            Error::NotAllowed => UserError::NotAllowed,
            Error::RegistrationClosed { max } => UserError::RegistrationClosed { max },
            Error::Banned => UserError::Banned,
            Error::Paused => UserError::Paused,
            Error::RateLimited {
                retry_after_secs,
                requested,
                available,
            } => UserError::RateLimited {
                retry_after_secs,
                requested,
                available,
            },
            Error::QuotaExhausted {
                requested,
                available,
            } => UserError::QuotaExhausted {
                requested,
                available,
            },
            Error::ExceedsQuota {
                requested,
                capacity,
            } => UserError::ExceedsQuota {
                requested,
                capacity,
            },
            Error::ServiceBusy { retry_after_secs } => UserError::ServiceBusy { retry_after_secs },
            Error::TooManyJobs { active, max } => UserError::TooManyJobs { active, max },
            Error::TooManyWaiters { max } => UserError::TooManyWaiters { max },
            Error::QueueFull { queued } => UserError::QueueFull { queued },
            Error::PromptTooLong { bytes, max } => UserError::PromptTooLong { bytes, max },
            Error::InvalidRequest { reason } => UserError::InvalidRequest { reason },
            Error::UnknownModel { model } => UserError::UnknownModel { model },
            Error::ModelIncomplete { model, missing } => {
                UserError::ModelIncomplete { model, missing }
            }
            Error::ModelNotDeployed { model } => UserError::ModelNotDeployed { model },
            Error::UnknownChunk {
                model,
                file,
                index,
                chunks,
            } => UserError::UnknownChunk {
                model,
                file,
                index,
                chunks,
            },
            Error::UnknownJob { job } => UserError::UnknownJob { job },
            Error::JobFinished { job } => UserError::JobFinished { job },
            Error::JobFailed { job, reason } => UserError::JobFailed { job, reason },
            Error::WaitInterrupted { job } => UserError::WaitInterrupted { job },
            Error::WaitTimedOut { job } => UserError::WaitTimedOut { job },
            other => UserError::GenericError {
                code: other.code(),
                message: other.to_string(),
            },
        }
    }
}

/// Why a controller's call was refused.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum AdminError {
    /// The method is for the canister's controllers.
    NotController,
    /// The anonymous principal cannot register or use the service.
    AnonymousCaller,
    /// The request is not acceptable (parameters, sizes).
    InvalidRequest {
        reason: String,
    },
    /// A quota outside the accepted range.
    InvalidQuota {
        reason: String,
    },
    /// No such user (controller methods naming a principal).
    UnknownUser {
        principal: Principal,
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
    /// The model still lacks chunks.
    ModelIncomplete {
        model: String,
        missing: u64,
    },
    /// The model is deployed and cannot change now.
    ModelInUse {
        model: String,
    },
    /// No healthy pipeline serves the model.
    ModelNotDeployed {
        model: String,
    },
    /// The principal is already a worker.
    WorkerExists {
        worker: Principal,
    },
    /// No such worker.
    UnknownWorker {
        worker: Principal,
    },
    /// The worker holds a stage of a pipeline: undeploy its model first.
    WorkerInUse {
        worker: Principal,
        pipeline: u32,
    },
    /// Deploying needs more idle workers than there are.
    NotEnoughWorkers {
        needed: u32,
        idle: u32,
    },
    /// No worker wasm has been uploaded (`spawn_workers`).
    NoWorkerWasm,
    /// A call to the management canister failed.
    ManagementCallFailed {
        reason: String,
    },
    UnknownJob {
        job: u64,
    },
    /// The job has ended already.
    JobFinished {
        job: u64,
    },
    /// Any other refusal: `code` is stable (see [`Error::code`]), the
    /// message says what went wrong.
    GenericError {
        code: u32,
        message: String,
    },
}

impl From<Error> for AdminError {
    fn from(e: Error) -> AdminError {
        match e {
            Error::NotController => AdminError::NotController,
            Error::AnonymousCaller => AdminError::AnonymousCaller,
            Error::InvalidRequest { reason } => AdminError::InvalidRequest { reason },
            Error::InvalidQuota { reason } => AdminError::InvalidQuota { reason },
            Error::UnknownUser { principal } => AdminError::UnknownUser { principal },
            Error::InvalidManifest { reason } => AdminError::InvalidManifest { reason },
            Error::ModelExists { model } => AdminError::ModelExists { model },
            Error::UnknownModel { model } => AdminError::UnknownModel { model },
            Error::UnknownChunk {
                model,
                file,
                index,
                chunks,
            } => AdminError::UnknownChunk {
                model,
                file,
                index,
                chunks,
            },
            Error::ChunkMismatch { reason } => AdminError::ChunkMismatch { reason },
            Error::TokenizerMismatch { reason } => AdminError::TokenizerMismatch { reason },
            Error::ModelIncomplete { model, missing } => {
                AdminError::ModelIncomplete { model, missing }
            }
            Error::ModelInUse { model } => AdminError::ModelInUse { model },
            Error::ModelNotDeployed { model } => AdminError::ModelNotDeployed { model },
            Error::WorkerExists { worker } => AdminError::WorkerExists { worker },
            Error::UnknownWorker { worker } => AdminError::UnknownWorker { worker },
            Error::WorkerInUse { worker, pipeline } => AdminError::WorkerInUse { worker, pipeline },
            Error::NotEnoughWorkers { needed, idle } => {
                AdminError::NotEnoughWorkers { needed, idle }
            }
            Error::NoWorkerWasm => AdminError::NoWorkerWasm,
            Error::ManagementCallFailed { reason } => AdminError::ManagementCallFailed { reason },
            Error::UnknownJob { job } => AdminError::UnknownJob { job },
            Error::JobFinished { job } => AdminError::JobFinished { job },
            other => AdminError::GenericError {
                code: other.code(),
                message: other.to_string(),
            },
        }
    }
}

impl Error {
    /// A number per variant that never changes (new variants take new
    /// numbers), for the `GenericError` of an audience the variant is
    /// not part of.
    pub fn code(&self) -> u32 {
        match self {
            Error::AnonymousCaller => 1,
            Error::NotRegistered => 2,
            Error::Banned => 3,
            Error::NotController => 4,
            Error::Paused => 5,
            Error::RateLimited { .. } => 6,
            Error::QuotaExhausted { .. } => 7,
            Error::ExceedsQuota { .. } => 8,
            Error::UnknownUser { .. } => 9,
            Error::InvalidQuota { .. } => 10,
            Error::InvalidManifest { .. } => 11,
            Error::ModelExists { .. } => 12,
            Error::UnknownModel { .. } => 13,
            Error::UnknownChunk { .. } => 14,
            Error::ChunkMismatch { .. } => 15,
            Error::TokenizerMismatch { .. } => 16,
            Error::WorkerExists { .. } => 17,
            Error::UnknownWorker { .. } => 18,
            Error::NotAWorker => 19,
            Error::NotEnoughWorkers { .. } => 20,
            Error::ModelIncomplete { .. } => 21,
            Error::ModelNotDeployed { .. } => 22,
            Error::ModelInUse { .. } => 23,
            Error::InvalidRequest { .. } => 24,
            Error::PromptTooLong { .. } => 25,
            Error::UnknownJob { .. } => 26,
            Error::JobFinished { .. } => 27,
            Error::QueueFull { .. } => 28,
            Error::JobFailed { .. } => 29,
            Error::WaitInterrupted { .. } => 30,
            Error::ManagementCallFailed { .. } => 31,
            Error::NoWorkerWasm => 32,
            Error::ApprovalPending => 33,
            Error::NotAllowed => 34,
            Error::RegistrationClosed { .. } => 35,
            Error::TooManyJobs { .. } => 36,
            Error::TooManyWaiters { .. } => 37,
            Error::WaitTimedOut { .. } => 38,
            Error::ServiceBusy { .. } => 39,
            Error::WorkerInUse { .. } => 40,
        }
    }
}

macro_rules! display_as_debug {
    ($($t:ty),*) => {$(
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                match self {
                    Self::GenericError { code, message } => write!(f, "{message} (code {code})"),
                    other => write!(f, "{other:?}"),
                }
            }
        }

        impl std::error::Error for $t {}
    )*};
}

display_as_debug!(UserError, AdminError, crate::CallbackError);
