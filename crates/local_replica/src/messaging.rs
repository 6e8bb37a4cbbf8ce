//! Messages, call contexts and callbacks.
//!
//! A request to a canister opens a *call context* that remembers whom to
//! answer (its [`Origin`]) and the cycles still available to accept. Every
//! call the canister makes registers a [`Callback`] that belongs to the call
//! context; the response to that call runs the callback as a new message.
//! A call context is answered once (by `msg_reply`/`msg_reject`, by a trap,
//! or with "did not reply" when its last callback has run without an
//! answer) and is closed when it is answered and no callback is left.

use candid::Principal;

use crate::error::Reject;
use crate::system_api::Payload;

/// Whom a call context answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Origin {
    /// An ingress message; the result is stored under this message id.
    Ingress { message_id: u64 },
    /// A call from a canister; the response runs `callback` there.
    Canister { caller: Principal, callback: u64 },
    /// A timer or heartbeat: nobody is answered.
    System,
}

#[derive(Debug)]
pub(crate) struct CallContext {
    pub canister: Principal,
    pub origin: Origin,
    pub caller: Principal,
    pub deadline: u64,
    pub available_cycles: u128,
    pub responded: bool,
    pub outstanding: u32,
    pub instructions: u64,
}

#[derive(Debug, Clone)]
pub(crate) struct Callback {
    pub call_context: u64,
    pub canister: Principal,
    pub on_reply: (u32, u32),
    pub on_reject: (u32, u32),
    pub on_cleanup: Option<(u32, u32)>,
    /// Best-effort calls: when the caller stops waiting.
    pub deadline: Option<u64>,
    /// Cycles the caller prepaid for the callback's execution and for the
    /// largest response.
    pub prepaid_callback: u128,
    pub prepaid_response: u128,
}

/// A response as it travels back to the caller.
#[derive(Debug, Clone)]
pub(crate) enum Response {
    Reply(Vec<u8>),
    Reject(Reject),
}

impl Response {
    pub fn from_payload(payload: Payload, error_code: Option<crate::error::ErrorCode>) -> Response {
        match payload {
            Payload::Reply(bytes) => Response::Reply(bytes),
            Payload::Reject { code, message } => Response::Reject(Reject {
                code,
                error_code,
                message,
            }),
        }
    }
}

#[derive(Debug)]
pub(crate) enum Message {
    Request {
        sender: Principal,
        receiver: Principal,
        method: String,
        arg: Vec<u8>,
        cycles: u128,
        origin: Origin,
        deadline: u64,
    },
    Response {
        receiver: Principal,
        callback: u64,
        response: Response,
        refund: u128,
    },
}

/// The state of an ingress message.
#[derive(Debug, Clone)]
pub(crate) enum IngressStatus {
    Processing,
    Done(Response),
}
