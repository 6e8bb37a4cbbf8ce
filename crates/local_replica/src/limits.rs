//! Execution limits. Defaults are the IC's for an application subnet; tests
//! lower them to exercise the traps.
//!
//! Where each default comes from (`dfinity/ic`, at the revision named):
//! - module validation: `rs/embedders/src/wasm_utils/validation.rs` and
//!   `rs/config/src/embedders.rs` ([`ModuleLimits`]);
//! - instructions per message: `rs/config/src/subnet_config.rs` at
//!   002d5530aeb1ef1ed362d7f9c3c5529b8ec1cafe (`MAX_INSTRUCTIONS_PER_MESSAGE`,
//!   `MAX_INSTRUCTIONS_PER_INSTALL_CODE`; 5 billion without DTS for queries);
//! - stable memory accessed and dirtied per message:
//!   `rs/config/src/embedders.rs` at 002d5530aeb1ef1ed362d7f9c3c5529b8ec1cafe
//!   (`STABLE_MEMORY_DIRTY_PAGE_LIMIT_*`, `STABLE_MEMORY_ACCESSED_PAGE_LIMIT_*`);
//! - the default `wasm_memory_limit` of a new canister:
//!   `rs/config/src/execution_environment.rs` (`DEFAULT_WASM_MEMORY_LIMIT`,
//!   3 GiB).

/// One WebAssembly page (heap and stable memory).
pub const WASM_PAGE: u64 = 64 * 1024;
/// One operating-system page: the unit in which the IC counts accessed and
/// dirtied stable memory.
pub const OS_PAGE: u64 = 4 * 1024;

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
const GIB: u64 = 1024 * MIB;

/// What a canister module may contain, as the IC validates it at install.
///
/// Defaults from `dfinity/ic` `rs/embedders/src/wasm_utils/validation.rs`
/// (0134cff12884583e5a3116bd9e051e7c57732844: `MAX_CODE_SECTION_SIZE_IN_BYTES`
/// = 10 MiB, `WASM_FUNCTION_SIZE_LIMIT` and `WASM_FUNCTION_COMPLEXITY_LIMIT`
/// = 1,000,000) and `rs/config/src/embedders.rs`
/// (002d5530aeb1ef1ed362d7f9c3c5529b8ec1cafe: `MAX_FUNCTIONS`, `MAX_GLOBALS`,
/// `MAX_CUSTOM_SECTIONS`, `MAX_CUSTOM_SECTIONS_SIZE`,
/// `MAX_NUMBER_EXPORTED_FUNCTIONS`, `MAX_SUM_EXPORTED_FUNCTION_NAME_LENGTHS`).
/// Newer replicas accept a larger code section (11 MiB in 2025, 12 MiB on
/// master): set [`ModuleLimits::max_code_section_bytes`] to model one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleLimits {
    /// Size of the code section's contents after the function count, i.e.
    /// the function bodies with their size prefixes (wasmparser's
    /// `CodeSectionStart::size`, which the IC compares; IC: 10 MiB).
    pub max_code_section_bytes: u64,
    /// Functions defined in the module, imports excluded (IC: 50,000).
    pub max_functions: usize,
    /// Globals defined in the module (IC: 1,000).
    pub max_globals: usize,
    /// Exported `canister_update|query|composite_query <name>` methods
    /// (IC: 1,000).
    pub max_exported_methods: usize,
    /// Sum of the `<name>` lengths of those methods (IC: 20,000 bytes).
    pub max_exported_name_bytes: usize,
    /// `icp:public` / `icp:private` custom sections (IC: 16).
    pub max_custom_sections: usize,
    /// Total size of those sections, names included (IC: 1 MiB).
    pub max_custom_sections_bytes: u64,
    /// Instructions in one function body (IC: 1,000,000).
    pub max_function_size: usize,
    /// Weighted complexity of one function body (IC: 1,000,000).
    pub max_function_complexity: u64,
}

impl Default for ModuleLimits {
    fn default() -> ModuleLimits {
        ModuleLimits {
            max_code_section_bytes: 10 * MIB,
            max_functions: 50_000,
            max_globals: 1_000,
            max_exported_methods: 1_000,
            max_exported_name_bytes: 20_000,
            max_custom_sections: 16,
            max_custom_sections_bytes: MIB,
            max_function_size: 1_000_000,
            max_function_complexity: 1_000_000,
        }
    }
}

/// Stable memory one execution may touch, in 4 KiB pages, per kind of
/// execution (the IC's `StableMemoryPageLimit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StablePageLimit {
    /// Updates, callbacks, timers, heartbeats (IC: 2 GiB).
    pub message: u64,
    /// Install, reinstall, upgrade (IC: 8 GiB).
    pub upgrade: u64,
    /// Queries, replicated or not, and composite queries (IC: 1 GiB).
    pub query: u64,
}

impl StablePageLimit {
    /// The IC's defaults: 2 GiB per message, 8 GiB per install or upgrade,
    /// 1 GiB per query (the same for accessed and for dirtied pages).
    pub const fn ic() -> StablePageLimit {
        StablePageLimit {
            message: 2 * GIB / OS_PAGE,
            upgrade: 8 * GIB / OS_PAGE,
            query: GIB / OS_PAGE,
        }
    }
}

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
    /// What a module may contain.
    pub module: ModuleLimits,
    /// `wasm_memory_limit` of a canister created without one (IC: 3 GiB).
    pub default_wasm_memory_limit: u64,
    /// Stable memory pages one execution may access (read or write).
    pub stable_accessed_pages: StablePageLimit,
    /// Stable memory pages one execution may dirty (write).
    pub stable_dirty_pages: StablePageLimit,
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
            module: ModuleLimits::default(),
            default_wasm_memory_limit: 3 * GIB,
            stable_accessed_pages: StablePageLimit::ic(),
            stable_dirty_pages: StablePageLimit::ic(),
        }
    }
}
