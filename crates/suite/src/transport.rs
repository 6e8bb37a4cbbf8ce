//! How the suite reaches a task manager: a [`Transport`] sends candid bytes
//! to a canister method as an update or a query and returns the reply's
//! bytes, as one caller.
//!
//! Two implementations exist: [`LocalTransport`] over the embedded
//! [`LocalReplica`] (here), and an `ic-agent` one for any network (the
//! `client` crate, so that canister tests never compile an HTTP stack).
//! Everything the command line does with a task manager (upload, deploy,
//! chat) is written once against this trait
//! ([`crate::TaskManager`], [`crate::upload`]).
//!
//! ```no_run
//! # fn main() -> Result<(), suite::SuiteError> {
//! use suite::{LocalTransport, TaskManager};
//! let mut ic = local_replica::LocalReplica::new()?;
//! # let task_manager = candid::Principal::anonymous();
//! let transport = LocalTransport::new(&mut ic, suite::controller());
//! let tm = TaskManager::new(&transport, task_manager);
//! let models = tm.models()?;
//! # Ok(()) }
//! ```

use std::sync::Mutex;
use std::time::Duration;

use candid::Principal;
use local_replica::{LocalReplica, RejectCode};

/// What kind of failure a call met: whether trying again may help.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallErrorKind {
    /// The network or the replica could not take or answer the call now
    /// (connection failure, timeout, HTTP 429 or 5xx, `SYS_TRANSIENT`):
    /// the same call may succeed later.
    Transient,
    /// The replica or the canister rejected the call (trap, unknown
    /// method, refused by `inspect_message`, …): retrying will not help.
    Rejected,
    /// Anything else that retrying will not mend (bad URL, a reply that is
    /// not candid, a certificate that does not verify).
    Permanent,
}

/// A call that got no reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct CallError {
    pub kind: CallErrorKind,
    pub message: String,
}

impl CallError {
    pub fn transient(message: impl Into<String>) -> CallError {
        CallError {
            kind: CallErrorKind::Transient,
            message: message.into(),
        }
    }

    pub fn rejected(message: impl Into<String>) -> CallError {
        CallError {
            kind: CallErrorKind::Rejected,
            message: message.into(),
        }
    }

    pub fn permanent(message: impl Into<String>) -> CallError {
        CallError {
            kind: CallErrorKind::Permanent,
            message: message.into(),
        }
    }

    pub fn is_transient(&self) -> bool {
        self.kind == CallErrorKind::Transient
    }
}

/// Update and query calls of candid bytes, as one caller.
///
/// `Sync`: the uploader keeps several calls in flight from several threads.
pub trait Transport: Sync {
    /// An update call; returns once it is answered (certified, on a
    /// network).
    fn update(&self, canister: Principal, method: &str, arg: Vec<u8>)
        -> Result<Vec<u8>, CallError>;

    /// A query call.
    fn query(&self, canister: Principal, method: &str, arg: Vec<u8>) -> Result<Vec<u8>, CallError>;

    /// The principal the calls are made as.
    fn caller(&self) -> Principal;

    /// Lets the canisters make progress before the next poll: the embedded
    /// replica executes a round, a network client sleeps `interval`.
    fn pause(&self, interval: Duration);
}

/// The embedded [`LocalReplica`] as one caller.
///
/// Calls are serialised (the replica runs one message at a time), so
/// several in flight gain nothing here but cost nothing either.
pub struct LocalTransport<'a> {
    ic: Mutex<&'a mut LocalReplica>,
    caller: Principal,
}

impl<'a> LocalTransport<'a> {
    pub fn new(ic: &'a mut LocalReplica, caller: Principal) -> LocalTransport<'a> {
        LocalTransport {
            ic: Mutex::new(ic),
            caller,
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut LocalReplica) -> R) -> R {
        // A poisoned lock only means another caller's thread panicked; the
        // replica itself is consistent between messages.
        let mut ic = self.ic.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut ic)
    }
}

fn local_error(e: local_replica::Error) -> CallError {
    match e.reject() {
        Some(r) if r.code == RejectCode::SysTransient => CallError::transient(e.to_string()),
        Some(_) => CallError::rejected(e.to_string()),
        None => CallError::permanent(e.to_string()),
    }
}

impl Transport for LocalTransport<'_> {
    fn update(
        &self,
        canister: Principal,
        method: &str,
        arg: Vec<u8>,
    ) -> Result<Vec<u8>, CallError> {
        self.with(|ic| ic.update_call(canister, self.caller, method, arg))
            .map_err(local_error)
    }

    fn query(&self, canister: Principal, method: &str, arg: Vec<u8>) -> Result<Vec<u8>, CallError> {
        self.with(|ic| ic.query_call(canister, self.caller, method, arg))
            .map_err(local_error)
    }

    fn caller(&self) -> Principal {
        self.caller
    }

    fn pause(&self, _interval: Duration) {
        self.with(|ic| ic.tick());
    }
}
