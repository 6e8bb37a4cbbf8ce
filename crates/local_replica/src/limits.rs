//! Execution limits. Defaults are the IC's for an application subnet; tests
//! lower them to exercise the traps.

/// One WebAssembly page (heap and stable memory).
pub const WASM_PAGE: u64 = 64 * 1024;

/// Limits the replica enforces. Every field is public so a test can set the
/// one it needs: `Limits { max_instructions_query: 1_000_000, ..Limits::default() }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Instructions per update message, reply/reject callback, timer and
    /// heartbeat (IC: 40 billion).
    pub max_instructions_update: u64,
    /// Instructions per query (IC: 5 billion).
    pub max_instructions_query: u64,
    /// Instructions for a whole code install, reinstall or upgrade
    /// (`pre_upgrade` + start + `post_upgrade`/`init`; IC: 300 billion).
    pub max_instructions_install: u64,
    /// Instructions for `canister_inspect_message` (IC: 200 million).
    pub max_instructions_inspect: u64,
    /// Size of an ingress message's argument (IC: 2 MiB).
    pub max_ingress_bytes: u64,
    /// Size of an inter-canister request's argument (IC: 2 MiB).
    pub max_inter_canister_bytes: u64,
    /// Size of a reply or reject message (IC: 2 MiB).
    pub max_response_bytes: u64,
    /// Size of an uncompressed canister module (IC: 100 MiB).
    pub max_wasm_bytes: u64,
    /// Size of one chunk in a canister's chunk store (IC: 1 MiB).
    pub max_chunk_bytes: u64,
    /// Chunks a canister's chunk store holds (IC: 100).
    pub max_chunks: usize,
    /// Heap pages (wasm32: 65536 pages = 4 GiB).
    pub max_heap_pages: u64,
    /// Stable memory pages (IC: 500 GiB).
    pub max_stable_pages: u64,
    /// Timeout of a bounded-wait call is clamped to this (IC: 300 s).
    pub max_bounded_wait_secs: u32,
    /// Controllers of one canister (IC: 10).
    pub max_controllers: usize,
    /// Rounds `update_call` and `run_until_idle` run before giving up.
    pub max_rounds: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_instructions_update: 40_000_000_000,
            max_instructions_query: 5_000_000_000,
            max_instructions_install: 300_000_000_000,
            max_instructions_inspect: 200_000_000,
            max_ingress_bytes: 2 * 1024 * 1024,
            max_inter_canister_bytes: 2 * 1024 * 1024,
            max_response_bytes: 2 * 1024 * 1024,
            max_wasm_bytes: 100 * 1024 * 1024,
            max_chunk_bytes: 1024 * 1024,
            max_chunks: 100,
            max_heap_pages: 65536,
            max_stable_pages: 500 * 1024 * 1024 * 1024 / WASM_PAGE,
            max_bounded_wait_secs: 300,
            max_controllers: 10,
            max_rounds: 10_000,
        }
    }
}
