//! The example's candid types: arguments, answers and errors. Every result
//! type is named (`AskResult`, …) so the `.did` never shows `Result_N`.

use candid::{CandidType, Deserialize, Principal};
use task_manager_api::JobInfo;

/// The install and upgrade argument, and `configure`'s: each field given
/// replaces the configured one; a field left out keeps it.
#[derive(CandidType, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct InitArgs {
    /// The task manager to call (else the canister environment variable
    /// `PUBLIC_CANISTER_ID:task_manager`, else the build's
    /// `CANISTER_ID_TASK_MANAGER`).
    pub task_manager: Option<Principal>,
    /// The model to ask (else `smollm2-135m-instruct`).
    pub model: Option<String>,
}

/// Where the task manager's id came from.
#[derive(CandidType, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskManagerSource {
    /// The install or upgrade argument, or `configure`.
    Configured,
    /// The canister environment variable `PUBLIC_CANISTER_ID:task_manager`.
    CanisterEnvironment,
    /// `CANISTER_ID_TASK_MANAGER` at build time.
    Build,
}

/// What the example uses now (`config`).
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub task_manager: Principal,
    pub task_manager_source: TaskManagerSource,
    pub model: String,
}

/// Why `ask`, `start`, `poll` or `config` gave no answer (the errors of
/// those the example serves).
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum ExampleError {
    /// The caller is neither a controller of the example nor on its allow
    /// list: the example spends its own rate-limit bucket at the task
    /// manager only for those.
    NotAllowed { caller: Principal },
    /// No task manager is known, or the one given is not a principal; the
    /// message says how to give one.
    NotConfigured { message: String },
    /// The task manager refused `method`: its own error.
    TaskManagerRefused {
        method: String,
        error: task_manager_api::UserError,
    },
    /// The call of the task manager's `method` failed: it was rejected, or
    /// the reply was not what the example expects.
    CallFailed { method: String, message: String },
}

/// Why a controller's call (`configure`, `allow`, `disallow`, `allowed`)
/// was refused.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum AdminError {
    /// Only a controller of the example manages it.
    NotController { caller: Principal },
    /// The allow list holds `max` principals already.
    AllowListFull { max: u32 },
    /// The anonymous principal is everyone who does not sign a message:
    /// allowing it would let anyone make the example spend.
    AnonymousPrincipal,
}

/// What `ask` answers: the generated text.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum AskResult {
    Ok(String),
    Err(ExampleError),
}

/// What `start` answers: the task manager's job id.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum StartResult {
    Ok(u64),
    Err(ExampleError),
}

/// What `poll` answers: the job as the task manager reports it (boxed:
/// it is much larger than the error).
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum PollResult {
    Ok(Box<JobInfo>),
    Err(ExampleError),
}

/// What `config` answers.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum ConfigResult {
    Ok(Config),
    Err(ExampleError),
}

/// What `configure`, `allow` and `disallow` answer.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum AdminResult {
    Ok(()),
    Err(AdminError),
}

/// What `allowed` answers: the allow list, in principal order.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum AllowedResult {
    Ok(Vec<Principal>),
    Err(AdminError),
}

/// `From<Result<$ok, $err>>` for a named result type.
macro_rules! from_result {
    ($($name:ident: $ok:ty, $err:ty;)*) => {$(
        impl From<Result<$ok, $err>> for $name {
            fn from(r: Result<$ok, $err>) -> $name {
                match r {
                    Ok(v) => $name::Ok(v),
                    Err(e) => $name::Err(e),
                }
            }
        }
    )*};
}

from_result! {
    AskResult: String, ExampleError;
    StartResult: u64, ExampleError;
    PollResult: Box<JobInfo>, ExampleError;
    ConfigResult: Config, ExampleError;
    AdminResult: (), AdminError;
    AllowedResult: Vec<Principal>, AdminError;
}
