//! Types shared by the worker's endpoints (and by the task manager, which
//! calls them).

use candid::{CandidType, Deserialize, Principal};

/// The argument of `install_code` (install and upgrade alike).
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct InitArgs {
    /// The task manager this worker serves: the only canister (besides its
    /// controllers, its pipeline peers and itself) that may call it.
    pub task_manager: Principal,
}

/// Why a generation ended.
#[derive(CandidType, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum FinishReason {
    /// `max_new_tokens` tokens were generated.
    MaxNewTokens,
    /// The model produced an end-of-sequence token.
    Eos,
    /// The generated text reached a stop sequence (not included).
    StopSequence,
    /// The model's context is full.
    ContextFull,
    /// The job was cancelled.
    Cancelled,
}

/// Who said a chat message.
#[derive(CandidType, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    System,
    User,
    Assistant,
}

impl Role {
    /// The name chat templates know it by.
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }

    /// The role named `name` (as [`Role::as_str`] writes it).
    pub fn parse(name: &str) -> Option<Role> {
        [Role::System, Role::User, Role::Assistant]
            .into_iter()
            .find(|r| r.as_str() == name)
    }
}

/// A chat message.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ChatMessage {
    pub role: Role,
    pub content: String,
}

/// What to continue.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum Prompt {
    /// Plain text, tokenized as is.
    Text(String),
    /// Chat messages, rendered with the model's chat template and an
    /// assistant turn opened.
    Chat(Vec<ChatMessage>),
}

/// How tokens are picked. Absent fields take the greedy defaults.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct Sampling {
    /// Absent, or below 0.001 (`engine::MIN_TEMPERATURE`): greedy.
    pub temperature: Option<f32>,
    /// Keep the `top_k` most likely tokens; 0 or absent: no limit.
    pub top_k: Option<u32>,
    /// Nucleus sampling threshold in (0, 1]; absent: 1.
    pub top_p: Option<f32>,
    /// Repetition penalty over prompt and output; absent: 1 (none).
    pub repetition_penalty: Option<f32>,
}

/// Instructions a job used, as `performance_counter` measured them in the
/// driver (its own stages; peers report theirs in [`ForwardOutput`]).
#[derive(CandidType, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct JobInstructions {
    /// Messages that ran prompt tokens (the prompt may take several).
    pub prefill_messages: u32,
    /// Prompt tokens run.
    pub prefill_tokens: u32,
    /// Instructions of the prefill messages, all stages of the pipeline.
    pub prefill: u64,
    /// Messages that each produced one token after the prefill.
    pub decode_messages: u32,
    /// Instructions of those messages, all stages of the pipeline.
    pub decode: u64,
    /// The most instructions any one message of the job used (driver or
    /// peer): what must fit in the per-message limit.
    pub max_message: u64,
}

/// The data a stage receives or produces.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq)]
pub enum StageData {
    /// Hidden states, `seq_len × hidden_size`, row-major.
    Hidden {
        seq_len: u32,
        hidden_size: u32,
        values: Vec<f32>,
    },
    /// The last stage's logits of the last position.
    Logits { values: Vec<f32> },
}

crate::named_result!(
    /// `Ok` once a request is taken (`run_job`: the job is accepted;
    /// `load_stages`: the load has started; `cancel_job`: the cancel is
    /// recorded), or why it was refused. One name for the three: candid
    /// gives structurally equal types one name anyway.
    AckResult,
    (),
    WorkerError
);

/// Every way a call to a worker can fail.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq)]
pub enum WorkerError {
    /// The caller is not the task manager, a pipeline peer, the worker
    /// itself or a controller (as the method requires).
    Unauthorized { caller: Principal },
    /// The worker holds no loaded stage (loading, or never assigned).
    NotLoaded,
    /// A load is already running.
    Busy,
    /// The assignment does not fit the manifest.
    InvalidAssignment { reason: String },
    /// The task manager did not give a chunk.
    ChunkUnavailable { reason: String },
    /// A chunk or a whole file did not hash to the manifest's SHA-256.
    HashMismatch { reason: String },
    /// tract could not load or run the stage, or the tokenizer failed.
    Engine { reason: String },
    /// The request is not acceptable (prompt, parameters).
    InvalidRequest { reason: String },
    /// The prompt has more tokens than the model's context.
    PromptTooLong { tokens: u32, max: u32 },
    /// No such job here.
    UnknownJob { job: u64 },
    /// A job with this id is already running (or its report is still
    /// being sent).
    JobExists { job: u64 },
    /// The worker runs (or holds caches or reports of) as many jobs as it
    /// may.
    TooManyJobs { max: u32 },
    /// A downstream peer failed, refused, answered something that does
    /// not fit the step, or did not answer before the deadline.
    PeerFailed { peer: Principal, reason: String },
    /// A step of the job failed (trapped, timed out, or the worker is
    /// stopping or was upgraded).
    StepFailed { reason: String },
}

impl std::fmt::Display for WorkerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WorkerError::Unauthorized { caller } => write!(f, "caller {caller} is not authorized"),
            WorkerError::NotLoaded => write!(f, "the worker has no loaded stage"),
            WorkerError::Busy => write!(f, "a load is already running"),
            WorkerError::InvalidAssignment { reason } => write!(f, "invalid assignment: {reason}"),
            WorkerError::ChunkUnavailable { reason } => write!(f, "chunk unavailable: {reason}"),
            WorkerError::HashMismatch { reason } => write!(f, "hash mismatch: {reason}"),
            WorkerError::Engine { reason } => write!(f, "engine: {reason}"),
            WorkerError::InvalidRequest { reason } => write!(f, "invalid request: {reason}"),
            WorkerError::PromptTooLong { tokens, max } => {
                write!(f, "the prompt has {tokens} tokens; the context holds {max}")
            }
            WorkerError::UnknownJob { job } => write!(f, "no job {job} on this worker"),
            WorkerError::JobExists { job } => write!(f, "job {job} is already running"),
            WorkerError::TooManyJobs { max } => {
                write!(f, "the worker has {max} jobs, the most it takes")
            }
            WorkerError::PeerFailed { peer, reason } => write!(f, "peer {peer} failed: {reason}"),
            WorkerError::StepFailed { reason } => write!(f, "a step failed: {reason}"),
        }
    }
}
