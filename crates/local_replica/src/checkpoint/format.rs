//! The stored types of a checkpoint manifest (format version 2: version
//! 1's [`Manifest`] followed by an `Option<`[`StoredSystem`]`>`).
//!
//! These are not the replica's live types: the live ones may change
//! without breaking what is on disk; a change here is a new
//! [`FORMAT_VERSION`](super::FORMAT_VERSION). Big data (memory pages,
//! modules, chunks) is stored as blobs and named here by SHA-256.

use candid::Principal;
use serde::{Deserialize, Serialize};

/// A SHA-256 digest: the name of a blob.
pub(crate) type Hash = [u8; 32];

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Manifest {
    pub seq: u64,
    pub replica: StoredReplica,
    pub canisters: Vec<StoredCanister>,
    pub queue: Vec<StoredMessage>,
    pub contexts: Vec<(u64, StoredCallContext)>,
    pub callbacks: Vec<(u64, StoredCallback)>,
    /// Ingress messages by id: `None` while processing.
    pub ingress: Vec<(u64, Option<StoredResponse>)>,
}

impl Manifest {
    /// Every blob the manifest names, page tables included (their pages
    /// are listed by the caller, who holds the tables).
    pub fn direct_blobs(&self) -> Vec<Hash> {
        let mut out = Vec::new();
        for c in &self.canisters {
            out.push(c.stable.table);
            out.extend(c.chunks.iter().copied());
            if let Some(code) = &c.code {
                out.push(code.module);
                out.push(code.heap.table);
            }
        }
        out
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct StoredReplica {
    pub time: u64,
    pub round: u64,
    pub next_id: u64,
    pub next_canister_index: u64,
    pub seed: Hash,
    pub rand_counter: u64,
    #[serde(with = "serde_bytes")]
    pub root_key: Vec<u8>,
    pub last_storage_charge: u64,
    /// Modules compiled by this replica (their later installs count a
    /// reduced compilation cost).
    pub compiled: Vec<Hash>,
}

/// The system canisters' state (format version 2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StoredSystem {
    pub ledger: StoredLedger,
}

/// The cycles ledger: balances by owner and subaccount, the block count
/// and the total supply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StoredLedger {
    pub balances: Vec<(Principal, Hash, u128)>,
    pub blocks: u64,
    pub total_supply: u128,
}

/// A heap or stable memory: its length and the blob of its page table.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub(crate) struct StoredMemory {
    pub len: u64,
    pub table: Hash,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct StoredCanister {
    pub id: Principal,
    pub controllers: Vec<Principal>,
    pub cycles: u128,
    /// `ic0.canister_status` code: 1 running, 2 stopping, 3 stopped.
    pub status: u32,
    pub version: u64,
    #[serde(with = "serde_bytes")]
    pub certified_data: Vec<u8>,
    pub global_timer: u64,
    /// The chunk store: the chunks' SHA-256, which are their keys.
    pub chunks: Vec<Hash>,
    pub stable: StoredMemory,
    pub freezing_threshold: u64,
    pub wasm_memory_limit: u64,
    pub env_vars: Vec<(String, String)>,
    pub stop_waiters: Vec<StoredOrigin>,
    pub code: Option<StoredCode>,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct StoredCode {
    /// The module as installed (its SHA-256 is the module hash).
    pub module: Hash,
    /// The committed heap.
    pub heap: StoredMemory,
    /// The committed values of the mutable globals, in the order of the
    /// module's mutable globals.
    pub globals: Vec<StoredVal>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum StoredVal {
    I32(i32),
    I64(i64),
    /// The bits of the float.
    F32(u32),
    F64(u64),
    V128(u128),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum StoredOrigin {
    Ingress { message_id: u64 },
    Canister { caller: Principal, callback: u64 },
    System,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StoredReject {
    /// Reject code (1-6).
    pub code: u32,
    /// The replica's error code, if any.
    pub error_code: Option<u32>,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum StoredResponse {
    Reply(#[serde(with = "serde_bytes")] Vec<u8>),
    Reject(StoredReject),
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum StoredMessage {
    Request {
        sender: Principal,
        receiver: Principal,
        method: String,
        #[serde(with = "serde_bytes")]
        arg: Vec<u8>,
        cycles: u128,
        origin: StoredOrigin,
        deadline: u64,
    },
    Response {
        receiver: Principal,
        callback: u64,
        response: StoredResponse,
        refund: u128,
    },
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct StoredCallContext {
    pub canister: Principal,
    pub origin: StoredOrigin,
    pub caller: Principal,
    pub deadline: u64,
    pub available_cycles: u128,
    pub responded: bool,
    pub outstanding: u32,
    pub instructions: u64,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct StoredCallback {
    pub call_context: u64,
    pub canister: Principal,
    pub on_reply: (u32, u32),
    pub on_reject: (u32, u32),
    pub on_cleanup: Option<(u32, u32)>,
    pub deadline: Option<u64>,
    pub prepaid_callback: u128,
    pub prepaid_response: u128,
}
