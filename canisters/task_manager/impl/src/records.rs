//! The types stored in stable memory, apart from the API's.
//!
//! The candid interface may rename or reshape its types (a chat role
//! became a variant, say); what is stored must keep decoding. So every
//! stored record uses the types here, converted to and from the API's at
//! the edges. Each stored structure is wrapped in a versioned enum (in
//! [`crate::state`]); fields added to a version are `Option`s, which candid
//! decodes from older records as absent.

use candid::{CandidType, Deserialize};
use task_manager_api::{
    ChatMessage, Config, FinishReason, JobInstructions, JobStatus, Prompt, Quota,
    RegistrationPolicy, Role, Sampling, WorkerState,
};

#[derive(CandidType, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuotaRecord {
    pub capacity: u64,
    pub refill_per_sec: u64,
}

impl From<Quota> for QuotaRecord {
    fn from(q: Quota) -> QuotaRecord {
        QuotaRecord {
            capacity: q.capacity,
            refill_per_sec: q.refill_per_sec,
        }
    }
}

impl From<QuotaRecord> for Quota {
    fn from(q: QuotaRecord) -> Quota {
        Quota {
            capacity: q.capacity,
            refill_per_sec: q.refill_per_sec,
        }
    }
}

#[derive(CandidType, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegistrationRecord {
    Open { max_users: u64 },
    Approval,
    AllowList,
}

impl From<RegistrationPolicy> for RegistrationRecord {
    fn from(p: RegistrationPolicy) -> RegistrationRecord {
        match p {
            RegistrationPolicy::Open { max_users } => RegistrationRecord::Open { max_users },
            RegistrationPolicy::Approval => RegistrationRecord::Approval,
            RegistrationPolicy::AllowList => RegistrationRecord::AllowList,
        }
    }
}

impl From<RegistrationRecord> for RegistrationPolicy {
    fn from(p: RegistrationRecord) -> RegistrationPolicy {
        match p {
            RegistrationRecord::Open { max_users } => RegistrationPolicy::Open { max_users },
            RegistrationRecord::Approval => RegistrationPolicy::Approval,
            RegistrationRecord::AllowList => RegistrationPolicy::AllowList,
        }
    }
}

/// The stored configuration; fields after `paused` came later (absent in
/// older records: the defaults of [`crate::state::default_config`]).
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ConfigRecord {
    pub default_quota: QuotaRecord,
    pub paused: bool,
    pub registration: Option<RegistrationRecord>,
    pub new_user_tokens: Option<u64>,
    pub global_quota: Option<QuotaRecord>,
    pub max_jobs_per_user: Option<u32>,
    pub max_waiters_per_user: Option<u32>,
    pub wait_timeout_secs: Option<u64>,
    pub finished_job_retention_secs: Option<u64>,
    pub max_finished_jobs_per_user: Option<u32>,
    pub queue_timeout_secs: Option<u64>,
    pub job_stall_timeout_secs: Option<u64>,
}

impl ConfigRecord {
    /// The configuration, with `defaults` for what older records lack.
    pub fn to_config(&self, defaults: &Config) -> Config {
        Config {
            default_quota: self.default_quota.into(),
            paused: self.paused,
            registration: self.registration.map_or(defaults.registration, Into::into),
            new_user_tokens: self.new_user_tokens.unwrap_or(defaults.new_user_tokens),
            // Absent here means none (a record that never had one).
            global_quota: self.global_quota.map(Into::into),
            max_jobs_per_user: self.max_jobs_per_user.unwrap_or(defaults.max_jobs_per_user),
            max_waiters_per_user: self
                .max_waiters_per_user
                .unwrap_or(defaults.max_waiters_per_user),
            wait_timeout_secs: self.wait_timeout_secs.unwrap_or(defaults.wait_timeout_secs),
            finished_job_retention_secs: self
                .finished_job_retention_secs
                .unwrap_or(defaults.finished_job_retention_secs),
            max_finished_jobs_per_user: self
                .max_finished_jobs_per_user
                .unwrap_or(defaults.max_finished_jobs_per_user),
            queue_timeout_secs: self
                .queue_timeout_secs
                .unwrap_or(defaults.queue_timeout_secs),
            job_stall_timeout_secs: self
                .job_stall_timeout_secs
                .unwrap_or(defaults.job_stall_timeout_secs),
        }
    }
}

impl From<&Config> for ConfigRecord {
    fn from(c: &Config) -> ConfigRecord {
        ConfigRecord {
            default_quota: c.default_quota.into(),
            paused: c.paused,
            registration: Some(c.registration.into()),
            new_user_tokens: Some(c.new_user_tokens),
            global_quota: c.global_quota.map(Into::into),
            max_jobs_per_user: Some(c.max_jobs_per_user),
            max_waiters_per_user: Some(c.max_waiters_per_user),
            wait_timeout_secs: Some(c.wait_timeout_secs),
            finished_job_retention_secs: Some(c.finished_job_retention_secs),
            max_finished_jobs_per_user: Some(c.max_finished_jobs_per_user),
            queue_timeout_secs: Some(c.queue_timeout_secs),
            job_stall_timeout_secs: Some(c.job_stall_timeout_secs),
        }
    }
}

/// A chat message as stored (the role as text, whatever the API calls it).
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ChatRecord {
    pub role: String,
    pub content: String,
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum PromptRecord {
    Text(String),
    Chat(Vec<ChatRecord>),
}

impl From<Prompt> for PromptRecord {
    fn from(p: Prompt) -> PromptRecord {
        match p {
            Prompt::Text(t) => PromptRecord::Text(t),
            Prompt::Chat(m) => PromptRecord::Chat(
                m.into_iter()
                    .map(|m| ChatRecord {
                        role: m.role.as_str().to_string(),
                        content: m.content,
                    })
                    .collect(),
            ),
        }
    }
}

impl PromptRecord {
    /// The prompt for the driver. A stored role the API no longer knows
    /// is sent as `user` (only this canister writes records, so it does
    /// not happen).
    pub fn to_prompt(&self) -> Prompt {
        match self {
            PromptRecord::Text(t) => Prompt::Text(t.clone()),
            PromptRecord::Chat(m) => Prompt::Chat(
                m.iter()
                    .map(|m| ChatMessage {
                        role: Role::parse(&m.role).unwrap_or(Role::User),
                        content: m.content.clone(),
                    })
                    .collect(),
            ),
        }
    }
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct SamplingRecord {
    pub temperature: Option<f32>,
    pub top_k: Option<u32>,
    pub top_p: Option<f32>,
    pub repetition_penalty: Option<f32>,
}

impl From<Sampling> for SamplingRecord {
    fn from(s: Sampling) -> SamplingRecord {
        SamplingRecord {
            temperature: s.temperature,
            top_k: s.top_k,
            top_p: s.top_p,
            repetition_penalty: s.repetition_penalty,
        }
    }
}

impl From<&SamplingRecord> for Sampling {
    fn from(s: &SamplingRecord) -> Sampling {
        Sampling {
            temperature: s.temperature,
            top_k: s.top_k,
            top_p: s.top_p,
            repetition_penalty: s.repetition_penalty,
        }
    }
}

#[derive(CandidType, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum FinishRecord {
    MaxNewTokens,
    Eos,
    StopSequence,
    ContextFull,
    Cancelled,
}

impl From<FinishReason> for FinishRecord {
    fn from(f: FinishReason) -> FinishRecord {
        match f {
            FinishReason::MaxNewTokens => FinishRecord::MaxNewTokens,
            FinishReason::Eos => FinishRecord::Eos,
            FinishReason::StopSequence => FinishRecord::StopSequence,
            FinishReason::ContextFull => FinishRecord::ContextFull,
            FinishReason::Cancelled => FinishRecord::Cancelled,
        }
    }
}

impl From<FinishRecord> for FinishReason {
    fn from(f: FinishRecord) -> FinishReason {
        match f {
            FinishRecord::MaxNewTokens => FinishReason::MaxNewTokens,
            FinishRecord::Eos => FinishReason::Eos,
            FinishRecord::StopSequence => FinishReason::StopSequence,
            FinishRecord::ContextFull => FinishReason::ContextFull,
            FinishRecord::Cancelled => FinishReason::Cancelled,
        }
    }
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum JobStatusRecord {
    Queued,
    Running,
    Completed { finish_reason: FinishRecord },
    Cancelled,
    Failed { reason: String },
}

impl JobStatusRecord {
    pub fn is_final(&self) -> bool {
        !matches!(self, JobStatusRecord::Queued | JobStatusRecord::Running)
    }
}

impl From<&JobStatusRecord> for JobStatus {
    fn from(s: &JobStatusRecord) -> JobStatus {
        match s {
            JobStatusRecord::Queued => JobStatus::Queued,
            JobStatusRecord::Running => JobStatus::Running,
            JobStatusRecord::Completed { finish_reason } => JobStatus::Completed {
                finish_reason: (*finish_reason).into(),
            },
            JobStatusRecord::Cancelled => JobStatus::Cancelled,
            JobStatusRecord::Failed { reason } => JobStatus::Failed {
                reason: reason.clone(),
            },
        }
    }
}

#[derive(CandidType, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct InstructionsRecord {
    pub prefill_messages: u32,
    pub prefill_tokens: u32,
    pub prefill: u64,
    pub decode_messages: u32,
    pub decode: u64,
    pub max_message: u64,
}

impl From<JobInstructions> for InstructionsRecord {
    fn from(i: JobInstructions) -> InstructionsRecord {
        InstructionsRecord {
            prefill_messages: i.prefill_messages,
            prefill_tokens: i.prefill_tokens,
            prefill: i.prefill,
            decode_messages: i.decode_messages,
            decode: i.decode,
            max_message: i.max_message,
        }
    }
}

impl From<InstructionsRecord> for JobInstructions {
    fn from(i: InstructionsRecord) -> JobInstructions {
        JobInstructions {
            prefill_messages: i.prefill_messages,
            prefill_tokens: i.prefill_tokens,
            prefill: i.prefill,
            decode_messages: i.decode_messages,
            decode: i.decode,
            max_message: i.max_message,
        }
    }
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum WorkerStateRecord {
    Idle,
    Loading,
    Ready,
    Failed { reason: String },
}

impl From<WorkerState> for WorkerStateRecord {
    fn from(s: WorkerState) -> WorkerStateRecord {
        match s {
            WorkerState::Idle => WorkerStateRecord::Idle,
            WorkerState::Loading => WorkerStateRecord::Loading,
            WorkerState::Ready => WorkerStateRecord::Ready,
            WorkerState::Failed { reason } => WorkerStateRecord::Failed { reason },
        }
    }
}

impl From<&WorkerStateRecord> for WorkerState {
    fn from(s: &WorkerStateRecord) -> WorkerState {
        match s {
            WorkerStateRecord::Idle => WorkerState::Idle,
            WorkerStateRecord::Loading => WorkerState::Loading,
            WorkerStateRecord::Ready => WorkerState::Ready,
            WorkerStateRecord::Failed { reason } => WorkerState::Failed {
                reason: reason.clone(),
            },
        }
    }
}
