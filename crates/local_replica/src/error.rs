//! Errors: the reject codes and error codes of the IC, the reject a call
//! ends with, and the library's own error type.
//!
//! A canister trap is never a host panic: it becomes a [`Reject`] with code
//! [`RejectCode::CanisterError`] and an [`ErrorCode`] that says which kind
//! of failure it was, as on the real replica.

use candid::Principal;

/// The reject codes of the IC interface specification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RejectCode {
    /// Fatal system error, retry unlikely to be useful.
    SysFatal = 1,
    /// Transient system error, retry might be possible.
    SysTransient = 2,
    /// Invalid destination (e.g. canister/account does not exist).
    DestinationInvalid = 3,
    /// Explicit reject by the canister.
    CanisterReject = 4,
    /// Canister error (e.g. trap, no response).
    CanisterError = 5,
    /// Response unknown; the call may or may not have been executed
    /// (bounded-wait calls whose deadline expired).
    SysUnknown = 6,
}

impl RejectCode {
    /// The numeric code as canisters see it (`ic0.msg_reject_code`).
    pub fn as_u32(self) -> u32 {
        self as u32
    }
}

/// The replica's error codes (a subset of the real replica's, same numbers).
/// The hundreds digit is the reject code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    CanisterQueueFull = 201,
    CanisterOutOfCycles = 207,
    CanisterNotFound = 301,
    InsufficientCyclesForCreateCanister = 403,
    CanisterRejectedMessage = 406,
    UnknownManagementMessage = 407,
    InvalidManagementPayload = 408,
    CanisterTrapped = 502,
    CanisterCalledTrap = 503,
    CanisterContractViolation = 504,
    CanisterInvalidWasm = 505,
    CanisterDidNotReply = 506,
    CanisterOutOfMemory = 507,
    CanisterStopped = 508,
    CanisterStopping = 509,
    CanisterNotStopped = 510,
    CanisterStoppingCancelled = 511,
    CanisterInvalidController = 512,
    CanisterNonEmpty = 514,
    InsufficientCyclesInCall = 520,
    CanisterInstructionLimitExceeded = 522,
    CanisterMemoryAccessLimitExceeded = 524,
    CompositeQueryCalledInReplicatedMode = 527,
    InsufficientCyclesInMemoryGrow = 532,
    CanisterMethodNotFound = 536,
    CanisterWasmModuleNotFound = 537,
    CanisterWasmMemoryLimitExceeded = 539,
    DeadlineExpired = 601,
}

impl ErrorCode {
    /// Every error code (a new variant belongs here too: checkpoints
    /// store error codes by number).
    pub const ALL: [ErrorCode; 28] = [
        ErrorCode::CanisterQueueFull,
        ErrorCode::CanisterOutOfCycles,
        ErrorCode::CanisterNotFound,
        ErrorCode::InsufficientCyclesForCreateCanister,
        ErrorCode::CanisterRejectedMessage,
        ErrorCode::UnknownManagementMessage,
        ErrorCode::InvalidManagementPayload,
        ErrorCode::CanisterTrapped,
        ErrorCode::CanisterCalledTrap,
        ErrorCode::CanisterContractViolation,
        ErrorCode::CanisterInvalidWasm,
        ErrorCode::CanisterDidNotReply,
        ErrorCode::CanisterOutOfMemory,
        ErrorCode::CanisterStopped,
        ErrorCode::CanisterStopping,
        ErrorCode::CanisterNotStopped,
        ErrorCode::CanisterStoppingCancelled,
        ErrorCode::CanisterInvalidController,
        ErrorCode::CanisterNonEmpty,
        ErrorCode::InsufficientCyclesInCall,
        ErrorCode::CanisterInstructionLimitExceeded,
        ErrorCode::CanisterMemoryAccessLimitExceeded,
        ErrorCode::CompositeQueryCalledInReplicatedMode,
        ErrorCode::InsufficientCyclesInMemoryGrow,
        ErrorCode::CanisterMethodNotFound,
        ErrorCode::CanisterWasmModuleNotFound,
        ErrorCode::CanisterWasmMemoryLimitExceeded,
        ErrorCode::DeadlineExpired,
    ];

    /// The error code with number `n`.
    pub fn from_u32(n: u32) -> Option<ErrorCode> {
        ErrorCode::ALL.into_iter().find(|e| *e as u32 == n)
    }

    /// The reject code this error code maps to.
    pub fn reject_code(self) -> RejectCode {
        match self as u32 / 100 {
            1 => RejectCode::SysFatal,
            2 => RejectCode::SysTransient,
            3 => RejectCode::DestinationInvalid,
            4 => RejectCode::CanisterReject,
            5 => RejectCode::CanisterError,
            _ => RejectCode::SysUnknown,
        }
    }
}

/// A call that ended without a reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject {
    pub code: RejectCode,
    /// The replica's detailed error code; `None` for rejects that came from
    /// another canister's callback (which only carry code and message).
    pub error_code: Option<ErrorCode>,
    pub message: String,
}

impl Reject {
    pub(crate) fn new(error_code: ErrorCode, message: impl Into<String>) -> Reject {
        Reject {
            code: error_code.reject_code(),
            error_code: Some(error_code),
            message: message.into(),
        }
    }

    pub(crate) fn canister(canister: Principal, error_code: ErrorCode, detail: &str) -> Reject {
        Reject::new(
            error_code,
            format!("Error from Canister {canister}: {detail}"),
        )
    }
}

impl std::fmt::Display for Reject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.error_code {
            Some(e) => write!(
                f,
                "reject code {} ({:?}), error code {} ({e:?}): {}",
                self.code.as_u32(),
                self.code,
                e as u32,
                self.message
            ),
            None => write!(
                f,
                "reject code {} ({:?}): {}",
                self.code.as_u32(),
                self.code,
                self.message
            ),
        }
    }
}

/// Errors of the local replica's Rust API.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The call was rejected (by the canister, the replica or the
    /// management canister).
    #[error("call rejected: {0}")]
    Rejected(Reject),
    /// A candid argument could not be encoded, or a reply did not decode as
    /// the expected type.
    #[error("candid: expected {expected}, {found}")]
    Candid { expected: String, found: String },
    /// The message did not complete within the allowed number of rounds.
    #[error(
        "message {message_id} did not complete within {rounds} rounds (expected a \
         response; the canister may be waiting on time: call advance_time)"
    )]
    NoProgress { message_id: u64, rounds: u64 },
    /// The wasm engine could not be set up.
    #[error("wasm engine: {0}")]
    Engine(String),
    /// A checkpoint could not be written or restored.
    #[error("checkpoint: {0}")]
    Checkpoint(#[from] crate::checkpoint::CheckpointError),
}

impl Error {
    /// The reject, if the error is one.
    pub fn reject(&self) -> Option<&Reject> {
        match self {
            Error::Rejected(r) => Some(r),
            _ => None,
        }
    }
}

impl From<Reject> for Error {
    fn from(r: Reject) -> Error {
        Error::Rejected(r)
    }
}
