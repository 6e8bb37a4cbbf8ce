//! A single-process Internet Computer replica for tests and tools.
//!
//! `local_replica` runs real canister wasm modules under wasmtime (cranelift)
//! with the IC System API (`ic0.*`), following the IC interface
//! specification: ingress update and query calls, inter-canister and self
//! calls with reply/reject/cleanup callbacks run as separate messages,
//! rollback of a trapped message, stable memory, upgrades, timers, cycles,
//! the management canister (`aaaaa-aa`) including chunked code install,
//! and per-message instruction limits measured with wasmtime fuel.
//!
//! Modules:
//! - [`replica`]: [`LocalReplica`], the scheduler and the public API;
//! - `canister`: per-canister state, execution with commit / rollback;
//! - `system_api`: the `ic0` host functions and their availability rules;
//! - `messaging`: call contexts, callbacks and messages;
//! - [`management`]: the management canister and its candid types;
//! - [`system`]: the cycles ledger and the cycles minting canister, run
//!   natively when [`Config::system_canisters`] is set;
//! - [`checkpoint`]: the state on disk ([`LocalReplica::checkpoint`],
//!   [`LocalReplica::restore`]);
//! - `validation`: module validation and instrumentation;
//! - [`limits`]: instruction and size limits; [`error`]: reject codes.
//!
//! See the crate README for what of the specification is covered and what
//! is not.

mod canister;
pub mod checkpoint;
pub mod costs;
pub mod cycles;
pub mod error;
pub mod limits;
pub mod management;
mod messaging;
pub mod replica;
pub mod system;
mod system_api;
mod validation;

pub use canister::CanisterStatus;
pub use checkpoint::{CheckpointError, CheckpointStats};
pub use cycles::FeeSchedule;
pub use error::{Error, ErrorCode, Reject, RejectCode};
pub use limits::{Limits, ModuleLimits, StablePageLimit};
pub use management::CanisterInstallMode;
pub use replica::{canister_id, Config, ExecutionKind, ExecutionRecord, LocalReplica, LogRecord};
pub use system::SystemCanistersConfig;
pub use system_api::{ic0_functions, ApiType};
pub use validation::{InvalidModule, MethodKind};
