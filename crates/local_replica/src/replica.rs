//! The replica: canisters, the message queue, the scheduler, code
//! installation, and the public API for tests and tools.
//!
//! ```no_run
//! use candid::Principal;
//! use local_replica::LocalReplica;
//!
//! # fn main() -> Result<(), local_replica::Error> {
//! # let wasm: Vec<u8> = Vec::new();
//! let mut ic = LocalReplica::new()?;
//! let user = Principal::from_slice(&[1; 29]);
//! let counter = ic.create_canister(user)?;
//! ic.install_canister(user, counter, wasm, candid::encode_one(None::<u64>).unwrap())?;
//! let n: u64 = ic.update_one(counter, user, "inc", &())?;
//! assert_eq!(n, 1);
//! # Ok(()) }
//! ```
//!
//! Scheduling is deterministic: one FIFO queue of messages; a round
//! ([`LocalReplica::tick`]) first expires bounded-wait calls whose deadline
//! passed, then runs due global timers and heartbeats, then executes the
//! messages that were queued when the round began, in order. Time only
//! moves when the test says so ([`LocalReplica::advance_time`]).

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use candid::utils::{ArgumentDecoder, ArgumentEncoder};
use candid::{CandidType, Principal};
use sha2::{Digest, Sha256};
use wasmtime::{Config as WasmConfig, Engine, Linker, Module};

use crate::canister::{Canister, CanisterStatus, CompiledModule, Entry, Execution, Wasm};
use crate::cycles::{out_of_cycles_message, CyclesContext, FeeSchedule};
use crate::error::{Error, ErrorCode, Reject, RejectCode};
use crate::limits::Limits;
use crate::management::{self, CanisterInstallMode, CanisterStatusResult, Outcome};
use crate::messaging::{CallContext, Callback, IngressStatus, Message, Origin, Response};
use crate::system::{SystemCanistersConfig, SystemState};
use crate::system_api::{self, ApiType, HostState, MessageState, PendingCall};
use crate::validation::{instrument, validate, MethodKind};

mod persist;

/// Replica settings.
#[derive(Debug, Clone)]
pub struct Config {
    pub limits: Limits,
    /// Seed of `raw_rand` (same seed, same bytes).
    pub seed: u64,
    /// Initial time, nanoseconds since 1970-01-01.
    pub start_time_ns: u64,
    /// Cycles of a canister created with `provisional_create_canister_with_cycles`
    /// without an amount.
    pub default_cycles: u128,
    /// Where compiled modules are kept between processes (compiling a
    /// 24 MiB canister takes about 18 s on two cores, loading it 50 ms).
    /// `None`: compile in every process.
    pub cache_dir: Option<std::path::PathBuf>,
    /// The fees charged (default: an application subnet of 13 nodes;
    /// [`FeeSchedule::free`] charges nothing).
    pub fees: FeeSchedule,
    /// The root key canisters get from `ic0.root_key_size/copy` (the
    /// DER-wrapped BLS key certificates verify with). `None`: a key shaped
    /// like the IC's, derived from `seed`, that certifies nothing.
    pub root_key: Option<Vec<u8>>,
    /// The cycles ledger and the cycles minting canister, run natively at
    /// their mainnet ids (what icp-cli needs to create canisters; see
    /// [`crate::system`]). `None` (the default): neither exists.
    pub system_canisters: Option<SystemCanistersConfig>,
    /// How many of the newest execution records, log lines and `raw_rand`
    /// answers are kept for inspection ([`LocalReplica::executions`],
    /// [`LocalReplica::logs`], [`LocalReplica::raw_rand_answers`]). `None`
    /// (the default, for tests and benchmarks): all of them. A served
    /// replica that runs for days sets a limit, or its memory grows with
    /// every message.
    pub history_limit: Option<usize>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            limits: Limits::default(),
            seed: 0,
            // 2025-01-01T00:00:00Z
            start_time_ns: 1_735_689_600_000_000_000,
            default_cycles: 100_000_000_000_000,
            cache_dir: None,
            fees: FeeSchedule::default(),
            root_key: None,
            system_canisters: None,
            history_limit: None,
        }
    }
}

/// Keeps the newest `limit` entries of `v`. Trimming waits until `v` holds
/// twice the limit, so that each push costs O(1) amortised.
pub(crate) fn trim_history<T>(v: &mut Vec<T>, limit: Option<usize>) {
    if let Some(limit) = limit {
        if v.len() > limit.saturating_mul(2).max(1) {
            v.drain(..v.len() - limit);
        }
    }
}

/// What kind of execution a record describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecutionKind {
    /// Compiling a module at install (its cost only; nothing runs).
    Compile,
    Start,
    Init,
    PreUpgrade,
    PostUpgrade,
    Update,
    ReplicatedQuery,
    Query,
    CompositeQuery,
    ReplyCallback,
    RejectCallback,
    Cleanup,
    InspectMessage,
    GlobalTimer,
    Heartbeat,
}

/// One message executed in a canister.
#[derive(Debug, Clone)]
pub struct ExecutionRecord {
    pub round: u64,
    pub canister: Principal,
    pub kind: ExecutionKind,
    /// The method for updates, queries and inspect; empty otherwise.
    pub method: String,
    /// Instructions as the IC counts them: weighted wasm instructions plus
    /// System API charges (for [`ExecutionKind::Compile`], the compilation
    /// charge counted against the install's limit).
    pub instructions: u64,
    /// Cycles charged for the execution's instructions (0 where nothing is
    /// charged, as in queries).
    pub cycles: u128,
    /// The trap message if the execution trapped.
    pub trap: Option<String>,
    /// Wall time of the execution (informational only).
    pub wall: Duration,
}

/// One `ic0.debug_print` (or a trap message, prefixed `[TRAP]: `).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    pub round: u64,
    pub time_ns: u64,
    pub canister: Principal,
    pub message: String,
}

/// Whether a message's changes stay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Persist {
    /// Commit on success, roll back on trap.
    Commit,
    /// Always roll back (queries).
    Discard,
    /// Leave as is on success, roll back on trap (inside a composite
    /// query, which rolls every canister it touched back at its end).
    Keep,
}

/// The canister id with index `n` in the first canister range
/// (`rwlgt-iiaaa-aaaaa-aaaaa-cai` is index 0).
pub fn canister_id(n: u64) -> Principal {
    let mut bytes = n.to_be_bytes().to_vec();
    bytes.extend_from_slice(&[0x01, 0x01]);
    Principal::from_slice(&bytes)
}

const MAX_COMPOSITE_DEPTH: u32 = 6;

/// One wasmtime engine for the process, so that compiled modules are shared
/// by every replica (tests create many; compiling a large canister takes
/// seconds). Its configuration follows the IC's: fuel for instruction
/// counting, canonical NaNs (deterministic floats), and the IC's wasm
/// features only (`validation::IC_WASM_FEATURES`: SIMD but no relaxed
/// SIMD, one 32-bit memory, no tail calls, threads or GC).
fn shared_engine() -> Result<Engine, Error> {
    static ENGINE: OnceLock<Result<Engine, String>> = OnceLock::new();
    ENGINE
        .get_or_init(|| {
            let mut config = WasmConfig::new();
            config.consume_fuel(true);
            // Fuel counts instructions with the IC's weights (see `costs`).
            config.operator_cost(crate::costs::ic_operator_cost());
            // The WebAssembly features the IC enables and no others (no
            // relaxed SIMD, threads, memory64, multi-memory, tail calls,
            // function references, GC): what the validator accepts.
            crate::validation::configure_engine(&mut config);
            config.cranelift_nan_canonicalization(true);
            Engine::new(&config).map_err(|e| e.to_string())
        })
        .clone()
        .map_err(Error::Engine)
}

/// Compiled modules by SHA-256 of the installed bytes.
fn module_cache() -> &'static Mutex<HashMap<[u8; 32], CompiledModule>> {
    static CACHE: OnceLock<Mutex<HashMap<[u8; 32], CompiledModule>>> = OnceLock::new();
    CACHE.get_or_init(Mutex::default)
}

fn cached_module(hash: &[u8; 32]) -> Option<CompiledModule> {
    module_cache()
        .lock()
        .ok()
        .and_then(|m| m.get(hash).cloned())
}

fn cache_module(hash: [u8; 32], module: CompiledModule) {
    if let Ok(mut m) = module_cache().lock() {
        m.insert(hash, module);
    }
}

/// DER prefix of a BLS12-381 public key followed by 96 bytes derived from
/// the seed: the shape of the IC's root key, not a real key.
fn placeholder_root_key(seed: &[u8; 32]) -> Result<Vec<u8>, Error> {
    let mut root_key =
        hex::decode("308182301d060d2b0601040182dc7c0503010201060c2b0601040182dc7c05030201036100")
            .map_err(|e| Error::Engine(e.to_string()))?;
    for i in 0u8..3 {
        let mut h = Sha256::new();
        h.update(seed);
        h.update([b'k', i]);
        root_key.extend_from_slice(&h.finalize());
    }
    Ok(root_key)
}

/// A single-process replica running real canister wasm.
pub struct LocalReplica {
    engine: Engine,
    linker: Linker<HostState>,
    pub(crate) limits: Arc<Limits>,
    pub(crate) canisters: BTreeMap<Principal, Canister>,
    pub(crate) next_canister_index: u64,
    time: u64,
    round: u64,
    queue: VecDeque<Message>,
    contexts: BTreeMap<u64, CallContext>,
    callbacks: BTreeMap<u64, Callback>,
    next_id: u64,
    ingress: BTreeMap<u64, IngressStatus>,
    records: Vec<ExecutionRecord>,
    logs: Vec<LogRecord>,
    pub(crate) seed: [u8; 32],
    pub(crate) rand_counter: u64,
    /// Each `raw_rand` answer and who asked, in order (tests check what
    /// canisters did with them).
    pub(crate) random_answers: Vec<(Principal, Vec<u8>)>,
    root_key: Arc<Vec<u8>>,
    pub(crate) default_cycles: u128,
    cache_dir: Option<std::path::PathBuf>,
    pub(crate) fees: Arc<FeeSchedule>,
    /// When storage was last charged.
    last_storage_charge: u64,
    /// Modules compiled by this replica: a later install of the same module
    /// counts a reduced compilation cost against its limit (as the IC's
    /// compilation cache).
    compiled: BTreeSet<[u8; 32]>,
    /// What the last checkpoint wrote (for incremental checkpoints).
    checkpoints: persist::Tracker,
    /// The system canisters' state, when they exist.
    pub(crate) system: Option<SystemState>,
    /// [`Config::history_limit`].
    pub(crate) history_limit: Option<usize>,
}

impl LocalReplica {
    /// A replica with the IC's default limits.
    pub fn new() -> Result<LocalReplica, Error> {
        LocalReplica::with_config(Config::default())
    }

    pub fn with_config(config: Config) -> Result<LocalReplica, Error> {
        let engine = shared_engine()?;
        let mut linker = Linker::new(&engine);
        system_api::define(&mut linker)?;
        let seed: [u8; 32] = Sha256::digest(config.seed.to_le_bytes()).into();
        let root_key = match config.root_key {
            Some(key) => key,
            None => placeholder_root_key(&seed)?,
        };
        Ok(LocalReplica {
            engine,
            linker,
            limits: Arc::new(config.limits),
            canisters: BTreeMap::new(),
            next_canister_index: 0,
            time: config.start_time_ns,
            round: 0,
            queue: VecDeque::new(),
            contexts: BTreeMap::new(),
            callbacks: BTreeMap::new(),
            next_id: 1,
            ingress: BTreeMap::new(),
            records: Vec::new(),
            logs: Vec::new(),
            seed,
            rand_counter: 0,
            random_answers: Vec::new(),
            root_key: Arc::new(root_key),
            default_cycles: config.default_cycles,
            cache_dir: config.cache_dir,
            fees: Arc::new(config.fees),
            last_storage_charge: config.start_time_ns,
            compiled: BTreeSet::new(),
            checkpoints: persist::Tracker::default(),
            system: config.system_canisters.map(|c| {
                let mut state = SystemState::default();
                if c.anonymous_cycles > 0 {
                    state.ledger.mint(
                        crate::system::cycles_ledger::AccountKey::default_of(
                            Principal::anonymous(),
                        ),
                        c.anonymous_cycles,
                    );
                }
                state
            }),
            history_limit: config.history_limit,
        })
    }

    fn new_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    // ------------------------------------------------------------------
    // Time and scheduling
    // ------------------------------------------------------------------

    /// Current time in nanoseconds since the epoch.
    pub fn time(&self) -> u64 {
        self.time
    }

    /// Moves time forward (timers become due; bounded-wait calls expire at
    /// the next round).
    pub fn advance_time(&mut self, by: Duration) {
        self.time = self.time.saturating_add(by.as_nanos() as u64);
    }

    /// Sets the time; it may not go backwards.
    pub fn set_time(&mut self, ns: u64) {
        self.time = self.time.max(ns);
    }

    /// Rounds executed so far.
    pub fn round(&self) -> u64 {
        self.round
    }

    /// Messages waiting in the queue.
    pub fn pending_messages(&self) -> usize {
        self.queue.len()
    }

    /// Executes one round.
    pub fn tick(&mut self) {
        self.round += 1;
        self.charge_storage();
        // Bounded-wait calls whose deadline passed get SYS_UNKNOWN.
        let now = self.time;
        let expired: Vec<(u64, Principal)> = self
            .callbacks
            .iter()
            .filter(|(_, cb)| cb.deadline.is_some_and(|d| d <= now))
            .map(|(id, cb)| (*id, cb.canister))
            .collect();
        for (id, canister) in expired {
            if let Some(cb) = self.callbacks.get_mut(&id) {
                cb.deadline = None;
            }
            self.queue.push_back(Message::Response {
                receiver: canister,
                callback: id,
                response: Response::Reject(Reject::new(
                    ErrorCode::DeadlineExpired,
                    "Call deadline has expired.",
                )),
                refund: 0,
            });
        }
        // Timers and heartbeats.
        let ids: Vec<Principal> = self.canisters.keys().copied().collect();
        for id in ids {
            let Some(c) = self.canisters.get_mut(&id) else {
                continue;
            };
            if c.status != CanisterStatus::Running {
                continue;
            }
            let Some(info) = c.wasm.as_ref().map(|w| w.compiled.info.clone()) else {
                continue;
            };
            if info.has_global_timer && c.global_timer != 0 && c.global_timer <= now {
                let due = std::mem::take(&mut c.global_timer);
                if !self.system_task(id, "canister_global_timer", ExecutionKind::GlobalTimer) {
                    // Out of cycles: the timer stays due.
                    if let Some(c) = self.canisters.get_mut(&id) {
                        c.global_timer = due;
                    }
                }
            }
            if info.has_heartbeat {
                self.system_task(id, "canister_heartbeat", ExecutionKind::Heartbeat);
            }
        }
        // The messages queued before this round.
        let n = self.queue.len();
        for _ in 0..n {
            let Some(message) = self.queue.pop_front() else {
                break;
            };
            self.execute_message(message);
        }
        self.finish_stopping();
    }

    /// Ticks until the queue is empty; the number of rounds.
    pub fn run_until_idle(&mut self) -> Result<u64, Error> {
        let mut rounds = 0;
        while !self.queue.is_empty() {
            if rounds >= self.limits.max_rounds {
                return Err(Error::NoProgress {
                    message_id: 0,
                    rounds,
                });
            }
            self.tick();
            rounds += 1;
        }
        Ok(rounds)
    }

    fn finish_stopping(&mut self) {
        let stopping: Vec<Principal> = self
            .canisters
            .values()
            .filter(|c| c.status == CanisterStatus::Stopping)
            .map(|c| c.id)
            .collect();
        for id in stopping {
            if self.contexts.values().any(|ctx| ctx.canister == id) {
                continue;
            }
            let waiters = match self.canisters.get_mut(&id) {
                Some(c) => {
                    c.status = CanisterStatus::Stopped;
                    c.version += 1;
                    std::mem::take(&mut c.stop_waiters)
                }
                None => continue,
            };
            let reply = candid::encode_one(()).unwrap_or_default();
            for w in waiters {
                self.respond(w, Response::Reply(reply.clone()), 0);
            }
        }
    }

    // ------------------------------------------------------------------
    // Execution
    // ------------------------------------------------------------------

    fn message(
        &self,
        api: ApiType,
        canister: Principal,
        caller: Principal,
        fuel: u64,
    ) -> MessageState {
        let mut m = MessageState::new(
            api,
            canister,
            caller,
            self.limits.clone(),
            self.root_key.clone(),
        );
        m.fuel_limit = fuel;
        m.time = self.time;
        if let Some(c) = self.canisters.get(&canister) {
            m.balance = c.cycles;
            m.status_code = c.status.code();
            m.version = c.version;
            m.controllers = c.controllers.clone();
            m.env_vars = c.env_vars.clone();
            m.global_timer = c.global_timer;
            m.certified_data = c.certified_data.clone();
        }
        m
    }

    #[allow(clippy::too_many_arguments)]
    fn record(
        &mut self,
        canister: Principal,
        kind: ExecutionKind,
        method: &str,
        instructions: u64,
        cycles: u128,
        trap: Option<String>,
        wall: Duration,
    ) {
        self.records.push(ExecutionRecord {
            round: self.round,
            canister,
            kind,
            method: method.to_string(),
            instructions,
            cycles,
            trap,
            wall,
        });
        trim_history(&mut self.records, self.history_limit);
    }

    fn push_logs(&mut self, canister: Principal, logs: Vec<String>, trap: Option<&str>) {
        for message in logs {
            self.logs.push(LogRecord {
                round: self.round,
                time_ns: self.time,
                canister,
                message,
            });
        }
        if let Some(t) = trap {
            self.logs.push(LogRecord {
                round: self.round,
                time_ns: self.time,
                canister,
                message: format!("[TRAP]: {t}"),
            });
        }
        trim_history(&mut self.logs, self.history_limit);
    }

    /// Runs `entry` in the installed canister `id` and commits or rolls
    /// back. `begin_journal` starts a new stable-memory journal.
    #[allow(clippy::too_many_arguments)]
    fn execute(
        &mut self,
        id: Principal,
        entry: Entry,
        mut msg: MessageState,
        kind: ExecutionKind,
        method: &str,
        persist: Persist,
        begin_journal: bool,
    ) -> Execution {
        let fresh = self.message(ApiType::Start, id, id, self.limits.max_instructions_install);
        let prepaid = msg.cycles.as_ref().map(|c| c.prepaid).unwrap_or(0);
        let installed = self.canisters.get(&id).is_some_and(|c| c.wasm.is_some());
        if !installed {
            // Nothing ran: the whole prepayment goes back.
            self.settle_execution(id, prepaid, None);
        }
        let Some(canister) = self.canisters.get_mut(&id) else {
            return Execution {
                result: Err((
                    ErrorCode::CanisterNotFound,
                    format!("Canister {id} not found"),
                )),
                instructions: 0,
                msg,
            };
        };
        if !installed {
            return Execution {
                result: Err((
                    ErrorCode::CanisterWasmModuleNotFound,
                    "Attempted to execute a message, but the canister contains no Wasm module."
                        .into(),
                )),
                instructions: 0,
                msg,
            };
        }
        if begin_journal {
            canister.stable.begin();
        }
        msg.stable = std::mem::take(&mut canister.stable);
        let start = Instant::now();
        let query = matches!(
            kind,
            ExecutionKind::Query
                | ExecutionKind::ReplicatedQuery
                | ExecutionKind::CompositeQuery
                | ExecutionKind::InspectMessage
        ) || persist == Persist::Keep;
        let global = (self.limits.max_heap_pages * crate::limits::WASM_PAGE) as usize;
        let wasm_memory_limit = canister.wasm_memory_limit_for(query);
        let Some(wasm) = canister.wasm.as_mut() else {
            unreachable!("checked above: the canister has a module")
        };
        wasm.set_memory_limits(global, wasm_memory_limit);
        let mut exec = wasm.run(&entry, msg);
        // Cycles put on a call that was never performed go back.
        if let Some(unsent) = exec.msg.pending_call.take() {
            exec.msg.balance = exec.msg.balance.saturating_add(unsent.cycles);
        }
        let keep = match persist {
            Persist::Commit | Persist::Keep => exec.result.is_ok(),
            Persist::Discard => false,
        };
        let mut rollback_error = None;
        if keep {
            if persist == Persist::Commit {
                wasm.commit();
                exec.msg.stable.commit();
                canister.cycles = exec.msg.balance;
                canister.global_timer = exec.msg.global_timer;
                if exec.msg.certified_data_changed {
                    canister.certified_data = exec.msg.certified_data.clone();
                }
                if !matches!(kind, ExecutionKind::ReplicatedQuery | ExecutionKind::Query) {
                    canister.version += 1;
                }
            }
        } else {
            if let Err(e) = wasm.rollback(&self.engine, &self.linker, fresh) {
                rollback_error = Some(e);
            }
            exec.msg.stable.rollback();
        }
        canister.stable = std::mem::take(&mut exec.msg.stable);
        let wall = start.elapsed();
        if let Some((code, text)) = rollback_error {
            // The module could not be re-instantiated: the canister is
            // left without code rather than in a half-restored state.
            canister.wasm = None;
            exec.result = Err((
                code,
                format!("rollback failed, the canister was uninstalled: {text}"),
            ));
        }
        let trap = exec.result.as_ref().err().map(|(_, t)| t.clone());
        let logs = std::mem::take(&mut exec.msg.logs);
        self.push_logs(id, logs, trap.as_deref());
        let cycles = self.settle_execution(id, prepaid, Some(exec.instructions));
        self.record(id, kind, method, exec.instructions, cycles, trap, wall);
        exec
    }

    // ------------------------------------------------------------------
    // Cycles
    // ------------------------------------------------------------------

    /// The fees and freezing threshold of canister `id` for an execution
    /// that prepaid `prepaid`; `None` where nothing is charged.
    fn cycles_context(&self, id: Principal, prepaid: u128) -> Option<CyclesContext> {
        if !self.fees.charges() {
            return None;
        }
        let c = self.canisters.get(&id)?;
        Some(CyclesContext {
            fees: self.fees.clone(),
            memory: c.memory_size(),
            freezing_threshold_secs: c.freezing_threshold,
            prepaid,
            callback_prepay: self
                .fees
                .execution_cost(self.limits.max_instructions_update),
            max_response_bytes: self.limits.max_response_bytes,
        })
    }

    /// Takes `cost` from canister `id` if it keeps its freezing threshold;
    /// the IC's out-of-cycles reject otherwise.
    pub(crate) fn withdraw(&mut self, id: Principal, cost: u128) -> Result<(), Reject> {
        if !self.fees.charges() {
            return Ok(());
        }
        let Some(ctx) = self.cycles_context(id, 0) else {
            return Err(Reject::new(
                ErrorCode::CanisterNotFound,
                format!("Canister {id} not found"),
            ));
        };
        let Some(c) = self.canisters.get_mut(&id) else {
            return Ok(());
        };
        if let Some(missing) = ctx.shortfall(c.cycles, cost) {
            return Err(Reject::new(
                ErrorCode::CanisterOutOfCycles,
                out_of_cycles_message(id, missing),
            ));
        }
        c.cycles -= cost;
        Ok(())
    }

    /// Prepays an update-like execution of at most `instructions` in
    /// canister `id`; its cycles context.
    fn prepay_execution(
        &mut self,
        id: Principal,
        instructions: u64,
    ) -> Result<Option<CyclesContext>, Reject> {
        let prepaid = self.fees.execution_cost(instructions);
        self.withdraw(id, prepaid)?;
        Ok(self.cycles_context(id, prepaid))
    }

    /// Settles a prepaid execution: what `instructions` cost is kept (all
    /// of it when nothing ran), the rest refunded to canister `id`; the
    /// cycles charged.
    fn settle_execution(
        &mut self,
        id: Principal,
        prepaid: u128,
        instructions: Option<u64>,
    ) -> u128 {
        if prepaid == 0 {
            return 0;
        }
        let cost = match instructions {
            Some(n) => self.fees.execution_cost(n).min(prepaid),
            None => 0,
        };
        if let Some(c) = self.canisters.get_mut(&id) {
            c.cycles = c.cycles.saturating_add(prepaid - cost);
        }
        cost
    }

    /// Charges every canister for the memory it held since the last charge
    /// (every 10 s of replica time, as the IC); a canister that cannot pay
    /// loses its balance and its code, as on the IC.
    fn charge_storage(&mut self) {
        const INTERVAL_NS: u64 = 10_000_000_000;
        let elapsed = self.time.saturating_sub(self.last_storage_charge);
        if elapsed < INTERVAL_NS || !self.fees.charges() {
            return;
        }
        self.last_storage_charge = self.time;
        let mut broke = Vec::new();
        for c in self.canisters.values_mut() {
            let cost = self.fees.storage_cost(c.memory_size(), elapsed);
            if c.cycles >= cost {
                c.cycles -= cost;
            } else {
                c.cycles = 0;
                if c.wasm.is_some() {
                    broke.push(c.id);
                }
            }
        }
        for id in broke {
            self.logs.push(LogRecord {
                round: self.round,
                time_ns: self.time,
                canister: id,
                message:
                    "[CYCLES]: the canister ran out of cycles for its memory and was uninstalled"
                        .into(),
            });
            self.uninstall(id);
        }
    }

    fn execute_message(&mut self, message: Message) {
        match message {
            Message::Request {
                sender,
                receiver,
                method,
                arg,
                cycles,
                origin,
                deadline,
            } => self.execute_request(sender, receiver, method, arg, cycles, origin, deadline),
            Message::Response {
                receiver,
                callback,
                response,
                refund,
            } => self.execute_response(receiver, callback, response, refund),
        }
    }

    /// Checks that `id` can take a call to `method`; its kind.
    fn method_kind(&self, id: Principal, method: &str, query: bool) -> Result<MethodKind, Reject> {
        let Some(c) = self.canisters.get(&id) else {
            return Err(Reject::new(
                ErrorCode::CanisterNotFound,
                format!("Canister {id} not found"),
            ));
        };
        match c.status {
            CanisterStatus::Running => {}
            CanisterStatus::Stopping => {
                return Err(Reject::canister(
                    id,
                    ErrorCode::CanisterStopping,
                    "Canister is stopping",
                ))
            }
            CanisterStatus::Stopped => {
                return Err(Reject::canister(
                    id,
                    ErrorCode::CanisterStopped,
                    "Canister is stopped",
                ))
            }
        }
        let Some(info) = c.info() else {
            return Err(Reject::canister(
                id,
                ErrorCode::CanisterWasmModuleNotFound,
                "Attempted to execute a message, but the canister contains no Wasm module.",
            ));
        };
        match info.methods.get(method) {
            Some(MethodKind::Update) if query => Err(Reject::canister(
                id,
                ErrorCode::CanisterMethodNotFound,
                &format!("Canister has no query method '{method}'."),
            )),
            Some(k) => Ok(*k),
            None => Err(Reject::canister(
                id,
                ErrorCode::CanisterMethodNotFound,
                &format!(
                    "Canister has no {} method '{method}'.",
                    if query { "query" } else { "update" }
                ),
            )),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn execute_request(
        &mut self,
        sender: Principal,
        receiver: Principal,
        method: String,
        arg: Vec<u8>,
        cycles: u128,
        origin: Origin,
        deadline: u64,
    ) {
        if receiver == Principal::management_canister() {
            match self.management(sender, &method, &arg, cycles, &origin) {
                Outcome::Done { result, consumed } => {
                    let response = match result {
                        Ok(bytes) => Response::Reply(bytes),
                        Err(r) => Response::Reject(r),
                    };
                    self.respond(origin, response, cycles - consumed);
                }
                Outcome::Deferred => {}
            }
            return;
        }
        if self.is_system_canister(receiver) {
            match self.system_call(sender, receiver, &method, &arg, cycles, &origin) {
                Outcome::Done { result, consumed } => {
                    let response = match result {
                        Ok(bytes) => Response::Reply(bytes),
                        Err(r) => Response::Reject(r),
                    };
                    self.respond(origin, response, cycles - consumed);
                }
                Outcome::Deferred => {}
            }
            return;
        }
        let kind = match self.method_kind(receiver, &method, false) {
            Ok(MethodKind::CompositeQuery) => {
                let r = Reject::canister(
                    receiver,
                    ErrorCode::CompositeQueryCalledInReplicatedMode,
                    "Composite query cannot be called in replicated mode",
                );
                self.respond(origin, Response::Reject(r), cycles);
                return;
            }
            Ok(k) => k,
            Err(r) => {
                self.respond(origin, Response::Reject(r), cycles);
                return;
            }
        };
        let fuel = match kind {
            MethodKind::Update => self.limits.max_instructions_update,
            _ => self.limits.max_instructions_query,
        };
        // The receiver prepays the execution, keeping its freezing
        // threshold (a frozen canister refuses the call).
        let prepaid = match self.prepay_execution(receiver, fuel) {
            Ok(c) => c,
            Err(r) => {
                self.respond(origin, Response::Reject(r), cycles);
                return;
            }
        };
        let ctx_id = self.new_id();
        self.contexts.insert(
            ctx_id,
            CallContext {
                canister: receiver,
                origin,
                caller: sender,
                deadline,
                available_cycles: cycles,
                responded: false,
                outstanding: 0,
                instructions: 0,
            },
        );
        let (api, export, exec_kind, persist) = match kind {
            MethodKind::Update => (
                ApiType::Update,
                format!("canister_update {method}"),
                ExecutionKind::Update,
                Persist::Commit,
            ),
            _ => (
                ApiType::ReplicatedQuery,
                format!("canister_query {method}"),
                ExecutionKind::ReplicatedQuery,
                Persist::Discard,
            ),
        };
        let mut msg = self.message(api, receiver, sender, fuel);
        msg.cycles = prepaid;
        msg.arg = arg;
        msg.cycles_available = cycles;
        // Queries see a deadline of 0, even in replicated mode.
        msg.deadline = if api == ApiType::Update { deadline } else { 0 };
        msg.method_name = method.clone();
        let exec = self.execute(
            receiver,
            Entry::Export(export),
            msg,
            exec_kind,
            &method,
            persist,
            true,
        );
        self.finish(ctx_id, exec, persist == Persist::Commit);
    }

    fn execute_response(
        &mut self,
        receiver: Principal,
        callback: u64,
        response: Response,
        refund: u128,
    ) {
        if let Some(c) = self.canisters.get_mut(&receiver) {
            c.cycles = c.cycles.saturating_add(refund);
        }
        let Some(cb) = self.callbacks.remove(&callback) else {
            return; // late response of a timed-out bounded-wait call
        };
        // The largest response was prepaid: what this one did not use comes
        // back.
        let response_bytes = match &response {
            Response::Reply(b) => b.len(),
            Response::Reject(r) => r.message.len(),
        } as u64;
        let unused = cb
            .prepaid_response
            .saturating_sub(self.fees.xnet_bytes_cost(response_bytes));
        if let Some(c) = self.canisters.get_mut(&receiver) {
            c.cycles = c.cycles.saturating_add(unused);
        }
        let ctx_id = cb.call_context;
        let Some(ctx) = self.contexts.get_mut(&ctx_id) else {
            return;
        };
        ctx.outstanding = ctx.outstanding.saturating_sub(1);
        let (caller, available, responded, deadline, before) = (
            ctx.caller,
            ctx.available_cycles,
            ctx.responded,
            ctx.deadline,
            ctx.instructions,
        );
        let (api, kind, arg, reject, (fun, env)) = match response {
            Response::Reply(bytes) => (
                ApiType::ReplyCallback,
                ExecutionKind::ReplyCallback,
                bytes,
                None,
                cb.on_reply,
            ),
            Response::Reject(r) => (
                ApiType::RejectCallback,
                ExecutionKind::RejectCallback,
                Vec::new(),
                Some((r.code, r.message)),
                cb.on_reject,
            ),
        };
        let mut msg = self.message(api, receiver, caller, self.limits.max_instructions_update);
        // The callback runs on the execution its call prepaid.
        msg.cycles = self.cycles_context(receiver, cb.prepaid_callback);
        msg.arg = arg;
        // A cleanup callback sees the reject code of the response (not its
        // message).
        let cleanup_reject = reject.as_ref().map(|(code, _)| (*code, String::new()));
        msg.reject = reject;
        msg.cycles_available = available;
        msg.cycles_refunded = refund;
        msg.replied_before = responded;
        msg.deadline = deadline;
        msg.context_instructions = before;
        let exec = self.execute(
            receiver,
            Entry::Table { fun, env },
            msg,
            kind,
            "",
            Persist::Commit,
            true,
        );
        if exec.result.is_err() {
            if let Some((fun, env)) = cb.on_cleanup {
                let mut m = self.message(
                    ApiType::Cleanup,
                    receiver,
                    caller,
                    self.limits.max_instructions_update,
                );
                m.context_instructions = before + exec.instructions;
                m.reject = cleanup_reject;
                m.cycles = self.cycles_context(receiver, 0);
                let cleanup = self.execute(
                    receiver,
                    Entry::Table { fun, env },
                    m,
                    ExecutionKind::Cleanup,
                    "",
                    Persist::Commit,
                    true,
                );
                if let Some(ctx) = self.contexts.get_mut(&ctx_id) {
                    ctx.instructions += cleanup.instructions;
                }
            }
        }
        self.finish(ctx_id, exec, true);
    }

    /// Runs a timer or heartbeat; false if the canister could not pay for
    /// it (it did not run).
    fn system_task(&mut self, id: Principal, export: &str, kind: ExecutionKind) -> bool {
        let fuel = self.limits.max_instructions_update;
        let Ok(cycles) = self.prepay_execution(id, fuel) else {
            return false;
        };
        let ctx_id = self.new_id();
        self.contexts.insert(
            ctx_id,
            CallContext {
                canister: id,
                origin: Origin::System,
                caller: Principal::management_canister(),
                deadline: 0,
                available_cycles: 0,
                responded: false,
                outstanding: 0,
                instructions: 0,
            },
        );
        let mut msg = self.message(
            ApiType::SystemTask,
            id,
            Principal::management_canister(),
            fuel,
        );
        msg.cycles = cycles;
        let exec = self.execute(
            id,
            Entry::Export(export.to_string()),
            msg,
            kind,
            "",
            Persist::Commit,
            true,
        );
        self.finish(ctx_id, exec, true);
        true
    }

    /// Applies a message's effects to its call context and answers it when
    /// it is due.
    fn finish(&mut self, ctx_id: u64, exec: Execution, committed: bool) {
        let Execution {
            result,
            instructions,
            msg,
        } = exec;
        let Some(ctx) = self.contexts.get_mut(&ctx_id) else {
            return;
        };
        ctx.instructions += instructions;
        let canister = ctx.canister;
        let mut error = None;
        let mut response = None;
        match result {
            Ok(()) => {
                if committed {
                    ctx.available_cycles -= msg.cycles_accepted.min(ctx.available_cycles);
                    for call in msg.calls {
                        self.send_call(ctx_id, canister, call);
                    }
                }
                response = msg.response;
            }
            Err((code, text)) => error = Some(Reject::canister(canister, code, &text)),
        }
        let Some(ctx) = self.contexts.get_mut(&ctx_id) else {
            return;
        };
        let answer = if let Some(payload) = response {
            Some(Response::from_payload(
                payload,
                Some(ErrorCode::CanisterRejectedMessage),
            ))
        } else if !ctx.responded && ctx.outstanding == 0 {
            Some(Response::Reject(error.unwrap_or_else(|| {
                Reject::canister(
                    canister,
                    ErrorCode::CanisterDidNotReply,
                    "Canister did not reply to the call",
                )
            })))
        } else {
            None
        };
        let mut to_send = None;
        if let Some(answer) = answer {
            ctx.responded = true;
            let refund = std::mem::take(&mut ctx.available_cycles);
            to_send = Some((ctx.origin.clone(), answer, refund));
        }
        if ctx.responded && ctx.outstanding == 0 {
            self.contexts.remove(&ctx_id);
        }
        if let Some((origin, answer, refund)) = to_send {
            self.respond(origin, answer, refund);
        }
    }

    fn send_call(&mut self, ctx_id: u64, canister: Principal, call: PendingCall) {
        let id = self.new_id();
        let deadline = call.timeout_secs.map(|s| {
            self.time
                .saturating_add(u64::from(s.max(1)) * 1_000_000_000)
        });
        self.callbacks.insert(
            id,
            Callback {
                call_context: ctx_id,
                canister,
                on_reply: call.on_reply,
                on_reject: call.on_reject,
                on_cleanup: call.on_cleanup,
                deadline,
                prepaid_callback: call.prepaid_callback,
                prepaid_response: call.prepaid_response,
            },
        );
        if let Some(ctx) = self.contexts.get_mut(&ctx_id) {
            ctx.outstanding += 1;
        }
        match Principal::try_from_slice(&call.callee) {
            Ok(callee) => self.queue.push_back(Message::Request {
                sender: canister,
                receiver: callee,
                method: call.method,
                arg: call.arg,
                cycles: call.cycles,
                origin: Origin::Canister {
                    caller: canister,
                    callback: id,
                },
                deadline: deadline.unwrap_or(0),
            }),
            Err(_) => self.queue.push_back(Message::Response {
                receiver: canister,
                callback: id,
                response: Response::Reject(Reject::new(
                    ErrorCode::CanisterNotFound,
                    format!(
                        "the callee id {} is not a valid principal",
                        hex::encode(&call.callee)
                    ),
                )),
                refund: call.cycles,
            }),
        }
    }

    pub(crate) fn respond(&mut self, origin: Origin, response: Response, refund: u128) {
        match origin {
            Origin::Ingress { message_id } => {
                self.ingress
                    .insert(message_id, IngressStatus::Done(response));
            }
            Origin::Canister { caller, callback } => self.queue.push_back(Message::Response {
                receiver: caller,
                callback,
                response,
                refund,
            }),
            Origin::System => {}
        }
    }

    /// Answers and closes every call context of `id` and drops its
    /// callbacks (uninstall, reinstall).
    fn close_contexts(&mut self, id: Principal, why: &str) {
        let open: Vec<u64> = self
            .contexts
            .iter()
            .filter(|(_, c)| c.canister == id)
            .map(|(k, _)| *k)
            .collect();
        for ctx_id in open {
            if let Some(ctx) = self.contexts.remove(&ctx_id) {
                if !ctx.responded {
                    let r = Reject::canister(id, ErrorCode::CanisterWasmModuleNotFound, why);
                    self.respond(ctx.origin, Response::Reject(r), ctx.available_cycles);
                }
            }
        }
        self.callbacks.retain(|_, cb| cb.canister != id);
    }

    pub(crate) fn uninstall(&mut self, id: Principal) {
        if let Some(c) = self.canisters.get_mut(&id) {
            c.wasm = None;
            c.stable.clear();
            c.certified_data.clear();
            c.global_timer = 0;
            c.version += 1;
        }
        self.close_contexts(id, "Canister has been uninstalled.");
    }

    // ------------------------------------------------------------------
    // Code installation
    // ------------------------------------------------------------------

    /// Validates and compiles `wasm` for canister `id`. Validation runs on
    /// every install (it depends on this replica's limits); the compiled
    /// code is shared by every replica of the process.
    fn compile(&mut self, id: Principal, wasm: &[u8]) -> Result<CompiledModule, Reject> {
        let hash: [u8; 32] = Sha256::digest(wasm).into();
        let installed = wasm;
        let invalid = |e: String| {
            Reject::canister(
                id,
                ErrorCode::CanisterInvalidWasm,
                &format!("Wasm module of canister {id} is not valid: {e}"),
            )
        };
        let unzipped;
        let wasm = if wasm.starts_with(&[0x1f, 0x8b, 0x08]) {
            unzipped = crate::validation::gunzip(wasm, self.limits.max_wasm_bytes)
                .map_err(|e| invalid(e.to_string()))?;
            &unzipped[..]
        } else {
            wasm
        };
        let info = validate(wasm, self.limits.max_wasm_bytes, &self.limits.module)
            .map_err(|e| invalid(e.to_string()))?;
        if let Some(m) = cached_module(&hash) {
            return Ok(m);
        }
        let instrumented = instrument(wasm, &info).map_err(|e| invalid(e.to_string()))?;
        let cached = self
            .cache_dir
            .as_deref()
            .and_then(|dir| disk_cache::load(&self.engine, dir, &instrumented));
        let module = match cached {
            Some(m) => m,
            None => {
                let m =
                    Module::new(&self.engine, &instrumented).map_err(|e| invalid(e.to_string()))?;
                if let Some(dir) = self.cache_dir.as_deref() {
                    disk_cache::store(dir, &instrumented, &m);
                }
                m
            }
        };
        let compiled = CompiledModule {
            module,
            info: Arc::new(info),
            hash,
            wasm: Arc::new(installed.to_vec()),
            size: wasm.len() as u64,
            compilation_cost: crate::costs::compilation_cost(wasm),
        };
        cache_module(hash, compiled.clone());
        Ok(compiled)
    }

    /// Installs `wasm_module` in canister `id`: validates and compiles it,
    /// prepays the install's instruction limit (a canister that cannot pay
    /// is refused), counts the compilation against the limit and charges
    /// it, runs the install and refunds what it did not use.
    pub(crate) fn install_code_impl(
        &mut self,
        sender: Principal,
        mode: CanisterInstallMode,
        id: Principal,
        wasm_module: &[u8],
        arg: Vec<u8>,
    ) -> Result<(), Reject> {
        let compiled = self.compile(id, wasm_module)?;
        let limit = self.limits.max_instructions_install;
        let prepaid = self.fees.execution_cost(limit);
        self.withdraw(id, prepaid)?;
        // Compiling costs its full amount in cycles; a module this replica
        // compiled before counts 1/100 of it against the limit.
        let full = compiled.compilation_cost;
        let counted = if self.compiled.insert(compiled.hash) {
            full
        } else {
            full / crate::costs::DESERIALIZATION_SPEED_UP_FACTOR
        };
        let compile_cycles = self.fees.execution_refund(full);
        self.record(
            id,
            ExecutionKind::Compile,
            "",
            counted,
            compile_cycles,
            None,
            Duration::ZERO,
        );
        let mut used = 0;
        let result = if counted > limit {
            Err(Reject::canister(
                id,
                ErrorCode::CanisterInstructionLimitExceeded,
                &format!(
                    "Canister exceeded the limit of {limit} instructions for single message execution: \
                     compiling the module alone costs {counted}."
                ),
            ))
        } else {
            self.run_install(sender, mode, id, &compiled, arg, limit - counted, &mut used)
        };
        let cost = self
            .fees
            .execution_cost(used)
            .saturating_add(compile_cycles)
            .min(prepaid);
        if let Some(c) = self.canisters.get_mut(&id) {
            c.cycles = c.cycles.saturating_add(prepaid - cost);
        }
        result
    }

    /// Runs an install, reinstall or upgrade of `compiled` within `budget`
    /// instructions, adding those it executes to `used`.
    #[allow(clippy::too_many_arguments)]
    fn run_install(
        &mut self,
        sender: Principal,
        mode: CanisterInstallMode,
        id: Principal,
        compiled: &CompiledModule,
        arg: Vec<u8>,
        mut budget: u64,
        used: &mut u64,
    ) -> Result<(), Reject> {
        let installed = self
            .canisters
            .get(&id)
            .map(|c| c.wasm.is_some())
            .unwrap_or(false);
        let (upgrade, skip_pre_upgrade) = match mode {
            CanisterInstallMode::Install if installed => {
                return Err(Reject::canister(
                    id,
                    ErrorCode::CanisterNonEmpty,
                    "Canister is not empty; install with mode = reinstall or upgrade instead.",
                ))
            }
            CanisterInstallMode::Install | CanisterInstallMode::Reinstall => (false, false),
            CanisterInstallMode::Upgrade(flags) => {
                if !installed {
                    return Err(Reject::canister(
                        id,
                        ErrorCode::CanisterWasmModuleNotFound,
                        "Attempted to upgrade, but the canister contains no Wasm module.",
                    ));
                }
                let flags = flags.unwrap_or_default();
                if flags.wasm_memory_persistence == Some(management::WasmMemoryPersistence::Keep) {
                    return Err(Reject::canister(
                        id,
                        ErrorCode::CanisterInvalidWasm,
                        "wasm_memory_persistence = keep (enhanced orthogonal persistence) is not supported by the local replica",
                    ));
                }
                (true, flags.skip_pre_upgrade.unwrap_or(false))
            }
        };
        let max_heap = (self.limits.max_heap_pages * crate::limits::WASM_PAGE) as usize;

        // pre_upgrade on the old module.
        let mut balance = self.canisters.get(&id).map(|c| c.cycles).unwrap_or(0);
        if let Some(c) = self.canisters.get_mut(&id) {
            c.stable.begin();
        }
        let has_pre = self
            .canisters
            .get(&id)
            .and_then(|c| c.info())
            .map(|i| i.has_pre_upgrade)
            .unwrap_or(false);
        if upgrade && has_pre && !skip_pre_upgrade {
            let mut msg = self.message(ApiType::PreUpgrade, id, sender, budget);
            msg.cycles = self.cycles_context(id, 0);
            let exec = self.execute(
                id,
                Entry::Export("canister_pre_upgrade".into()),
                msg,
                ExecutionKind::PreUpgrade,
                "",
                Persist::Keep,
                false,
            );
            budget = budget.saturating_sub(exec.instructions);
            *used += exec.instructions;
            if let Err((code, text)) = exec.result {
                if let Some(c) = self.canisters.get_mut(&id) {
                    c.stable.rollback();
                }
                return Err(Reject::canister(
                    id,
                    code,
                    &format!("Pre-upgrade failed: {text}"),
                ));
            }
            balance = exec.msg.balance;
        }

        // The new instance, its start function and init / post_upgrade.
        let Some(canister) = self.canisters.get_mut(&id) else {
            return Err(Reject::new(
                ErrorCode::CanisterNotFound,
                format!("Canister {id} not found"),
            ));
        };
        let old_wasm = canister.wasm.take();
        let old_stable = if upgrade {
            None
        } else {
            let s = std::mem::take(&mut canister.stable);
            canister.stable.begin();
            Some(s)
        };
        let new_version = canister.version + 1;
        let restore = |this: &mut LocalReplica,
                       old_wasm: Option<Wasm>,
                       old_stable: Option<system_api::StableMemory>| {
            let fresh = this.message(ApiType::Start, id, id, this.limits.max_instructions_install);
            if let Some(c) = this.canisters.get_mut(&id) {
                c.wasm = old_wasm;
                match old_stable {
                    Some(s) => c.stable = s,
                    None => c.stable.rollback(),
                }
                if let Some(w) = c.wasm.as_mut() {
                    let _ = w.rollback(&this.engine, &this.linker, fresh);
                }
            }
        };

        let mut start_msg = self.message(ApiType::Start, id, sender, budget);
        start_msg.cycles = self.cycles_context(id, 0);
        start_msg.version = new_version;
        if let Some(c) = self.canisters.get_mut(&id) {
            start_msg.stable = std::mem::take(&mut c.stable);
        }
        let t0 = Instant::now();
        let (wasm, mut start_msg, start_instr) =
            Wasm::instantiate(&self.engine, &self.linker, compiled, max_heap, start_msg);
        if let Some(c) = self.canisters.get_mut(&id) {
            c.stable = std::mem::take(&mut start_msg.stable);
        }
        let trap = wasm.as_ref().err().map(|(_, t)| t.clone());
        self.push_logs(id, std::mem::take(&mut start_msg.logs), trap.as_deref());
        self.record(
            id,
            ExecutionKind::Start,
            "",
            start_instr,
            0,
            trap,
            t0.elapsed(),
        );
        budget = budget.saturating_sub(start_instr);
        *used += start_instr;
        let mut wasm = match wasm {
            Ok(w) => w,
            Err((code, text)) => {
                restore(self, old_wasm, old_stable);
                return Err(Reject::canister(id, code, &text));
            }
        };
        let (entry, kind, has) = if upgrade {
            (
                "canister_post_upgrade",
                ExecutionKind::PostUpgrade,
                compiled.info.has_post_upgrade,
            )
        } else {
            ("canister_init", ExecutionKind::Init, compiled.info.has_init)
        };
        if has {
            let mut msg = self.message(ApiType::Init, id, sender, budget);
            msg.cycles = self.cycles_context(id, 0);
            msg.arg = arg;
            msg.version = new_version;
            msg.balance = balance;
            msg.global_timer = 0;
            if !upgrade {
                msg.certified_data = Vec::new();
            }
            if let Some(c) = self.canisters.get_mut(&id) {
                msg.stable = std::mem::take(&mut c.stable);
            }
            let t0 = Instant::now();
            if let Some(c) = self.canisters.get(&id) {
                wasm.set_memory_limits(max_heap, c.wasm_memory_limit_for(false));
            }
            let mut exec = wasm.run(&Entry::Export(entry.into()), msg);
            *used += exec.instructions;
            if let Some(c) = self.canisters.get_mut(&id) {
                c.stable = std::mem::take(&mut exec.msg.stable);
            }
            let trap = exec.result.as_ref().err().map(|(_, t)| t.clone());
            self.push_logs(id, std::mem::take(&mut exec.msg.logs), trap.as_deref());
            self.record(id, kind, "", exec.instructions, 0, trap, t0.elapsed());
            if let Err((code, text)) = exec.result {
                let text = if upgrade {
                    format!("Post-upgrade failed: {text}")
                } else {
                    format!("Init failed: {text}")
                };
                restore(self, old_wasm, old_stable);
                return Err(Reject::canister(id, code, &text));
            }
            wasm.commit();
            balance = exec.msg.balance;
            if let Some(c) = self.canisters.get_mut(&id) {
                c.global_timer = exec.msg.global_timer;
                if exec.msg.certified_data_changed {
                    c.certified_data = exec.msg.certified_data;
                } else if !upgrade {
                    c.certified_data.clear();
                }
            }
        } else if let Some(c) = self.canisters.get_mut(&id) {
            c.global_timer = 0;
            if !upgrade {
                c.certified_data.clear();
            }
        }
        if let Some(c) = self.canisters.get_mut(&id) {
            c.stable.commit();
            c.wasm = Some(wasm);
            c.version = new_version;
            c.cycles = balance;
        }
        drop(old_wasm);
        if mode == CanisterInstallMode::Reinstall {
            self.close_contexts(id, "Canister has been reinstalled.");
        }
        Ok(())
    }

    // ------------------------------------------------------------------
    // Ingress and queries
    // ------------------------------------------------------------------

    /// Submits an ingress update call; its message id. Runs
    /// `canister_inspect_message` first, as the IC does before accepting
    /// ingress.
    pub fn submit_update(
        &mut self,
        canister: Principal,
        sender: Principal,
        method: &str,
        arg: Vec<u8>,
    ) -> Result<u64, Error> {
        let limit = self.limits.max_ingress_bytes;
        if arg.len() as u64 > limit {
            return Err(Error::Rejected(Reject::new(
                ErrorCode::CanisterRejectedMessage,
                format!(
                    "the ingress message's argument is {} bytes; at most {limit} bytes are allowed",
                    arg.len()
                ),
            )));
        }
        if canister == Principal::management_canister() {
            if !management::ingress_allowed(method) {
                return Err(Error::Rejected(Reject::new(
                    ErrorCode::CanisterRejectedMessage,
                    format!("ic00 method {method} cannot be called with an ingress message"),
                )));
            }
        } else if self.is_system_canister(canister) {
            self.system_method(canister, method, false)?;
        } else {
            self.method_kind(canister, method, false)?;
            self.inspect(canister, sender, method, &arg)?;
        }
        // Inducting the message costs the canister it is for (for the
        // management canister, the canister the call is about; provisional
        // calls are free), which must keep its freezing threshold.
        let payer = if canister == Principal::management_canister() {
            management::ingress_payer(method, &arg)
        } else {
            Some(canister)
        };
        if let Some(payer) = payer.filter(|p| self.canisters.contains_key(p)) {
            let bytes = (arg.len() + method.len()) as u64;
            self.withdraw(payer, self.fees.ingress_induction_cost(bytes))?;
        }
        let id = self.new_id();
        self.ingress.insert(id, IngressStatus::Processing);
        self.queue.push_back(Message::Request {
            sender,
            receiver: canister,
            method: method.to_string(),
            arg,
            cycles: 0,
            origin: Origin::Ingress { message_id: id },
            deadline: 0,
        });
        Ok(id)
    }

    fn inspect(
        &mut self,
        canister: Principal,
        sender: Principal,
        method: &str,
        arg: &[u8],
    ) -> Result<(), Reject> {
        let has = self
            .canisters
            .get(&canister)
            .and_then(|c| c.info())
            .map(|i| i.has_inspect_message)
            .unwrap_or(false);
        if !has {
            return Ok(());
        }
        let mut msg = self.message(
            ApiType::InspectMessage,
            canister,
            sender,
            self.limits.max_instructions_inspect,
        );
        msg.arg = arg.to_vec();
        msg.method_name = method.to_string();
        let exec = self.execute(
            canister,
            Entry::Export("canister_inspect_message".into()),
            msg,
            ExecutionKind::InspectMessage,
            method,
            Persist::Discard,
            true,
        );
        match exec.result {
            Err((code, text)) => Err(Reject::canister(canister, code, &text)),
            Ok(()) if !exec.msg.accepted_message => Err(Reject::canister(
                canister,
                ErrorCode::CanisterRejectedMessage,
                "Canister rejected the message",
            )),
            Ok(()) => Ok(()),
        }
    }

    /// The result of an ingress message, if it is done.
    pub fn ingress_result(&self, message_id: u64) -> Option<Result<Vec<u8>, Reject>> {
        match self.ingress.get(&message_id)? {
            IngressStatus::Processing => None,
            IngressStatus::Done(Response::Reply(b)) => Some(Ok(b.clone())),
            IngressStatus::Done(Response::Reject(r)) => Some(Err(r.clone())),
        }
    }

    /// Ticks until the ingress message is answered.
    pub fn await_ingress(&mut self, message_id: u64) -> Result<Vec<u8>, Error> {
        let mut rounds = 0;
        loop {
            if let Some(r) = self.ingress_result(message_id) {
                self.ingress.remove(&message_id);
                return r.map_err(Error::Rejected);
            }
            if rounds >= self.limits.max_rounds {
                return Err(Error::NoProgress { message_id, rounds });
            }
            self.tick();
            rounds += 1;
        }
    }

    /// An ingress update call; runs rounds until it is answered.
    pub fn update_call(
        &mut self,
        canister: Principal,
        sender: Principal,
        method: &str,
        arg: Vec<u8>,
    ) -> Result<Vec<u8>, Error> {
        let id = self.submit_update(canister, sender, method, arg)?;
        self.await_ingress(id)
    }

    /// A query call (non-replicated: its changes are discarded). Composite
    /// queries may call query methods of other canisters.
    pub fn query_call(
        &mut self,
        canister: Principal,
        sender: Principal,
        method: &str,
        arg: Vec<u8>,
    ) -> Result<Vec<u8>, Error> {
        self.query_call_with_certificate(canister, sender, method, arg, None)
    }

    /// A query call whose method, if it is a (non-composite) query, finds
    /// `certificate` with `ic0.data_certificate_present/size/copy`, as a
    /// query answered by a real replica does. Composite queries and the
    /// queries they call get none, as the specification says.
    pub fn query_call_with_certificate(
        &mut self,
        canister: Principal,
        sender: Principal,
        method: &str,
        arg: Vec<u8>,
        certificate: Option<Vec<u8>>,
    ) -> Result<Vec<u8>, Error> {
        if arg.len() as u64 > self.limits.max_ingress_bytes {
            return Err(Error::Rejected(Reject::new(
                ErrorCode::CanisterRejectedMessage,
                format!(
                    "the query's argument is {} bytes; at most {} bytes are allowed",
                    arg.len(),
                    self.limits.max_ingress_bytes
                ),
            )));
        }
        let mut touched = BTreeSet::new();
        let certificate = certificate.map(Arc::new);
        let response = self.run_query(canister, sender, method, arg, 0, &mut touched, certificate);
        for id in touched {
            let fresh = self.message(ApiType::Start, id, id, self.limits.max_instructions_install);
            if let Some(c) = self.canisters.get_mut(&id) {
                if let Some(w) = c.wasm.as_mut() {
                    let _ = w.rollback(&self.engine, &self.linker, fresh);
                }
                c.stable.rollback();
            }
        }
        match response {
            Response::Reply(b) => Ok(b),
            Response::Reject(r) => Err(Error::Rejected(r)),
        }
    }

    /// Runs a (composite) query and the calls it makes, depth first, with
    /// their callbacks; state is left for the caller to roll back.
    /// `certificate` is given to a non-composite query method only.
    #[allow(clippy::too_many_arguments)]
    fn run_query(
        &mut self,
        canister: Principal,
        sender: Principal,
        method: &str,
        arg: Vec<u8>,
        depth: u32,
        touched: &mut BTreeSet<Principal>,
        certificate: Option<Arc<Vec<u8>>>,
    ) -> Response {
        if canister == Principal::management_canister() {
            return Response::Reject(Reject::new(
                ErrorCode::CanisterMethodNotFound,
                format!("the management canister has no query method '{method}'"),
            ));
        }
        if self.is_system_canister(canister) {
            return match self.system_query(canister, method, &arg) {
                Ok(bytes) => Response::Reply(bytes),
                Err(r) => Response::Reject(r),
            };
        }
        let kind = match self.method_kind(canister, method, true) {
            Ok(k) => k,
            Err(r) => return Response::Reject(r),
        };
        let first_touch = touched.insert(canister);
        let (api, export, ek) = match kind {
            MethodKind::CompositeQuery => (
                ApiType::CompositeQuery,
                format!("canister_composite_query {method}"),
                ExecutionKind::CompositeQuery,
            ),
            _ => (
                ApiType::NonReplicatedQuery,
                format!("canister_query {method}"),
                ExecutionKind::Query,
            ),
        };
        let mut msg = self.message(api, canister, sender, self.limits.max_instructions_query);
        msg.arg = arg;
        msg.method_name = method.to_string();
        if api == ApiType::NonReplicatedQuery {
            msg.data_certificate = certificate;
        }
        let exec = self.execute(
            canister,
            Entry::Export(export),
            msg,
            ek,
            method,
            Persist::Keep,
            first_touch,
        );
        let mut pending: VecDeque<PendingCall> = VecDeque::new();
        let mut result = exec.result;
        let mut msg = exec.msg;
        loop {
            if let Err((code, text)) = result {
                return Response::Reject(Reject::canister(canister, code, &text));
            }
            if let Some(payload) = msg.response.take() {
                return Response::from_payload(payload, Some(ErrorCode::CanisterRejectedMessage));
            }
            pending.extend(msg.calls.drain(..));
            let Some(call) = pending.pop_front() else {
                return Response::Reject(Reject::canister(
                    canister,
                    ErrorCode::CanisterDidNotReply,
                    "Canister did not reply to the call",
                ));
            };
            let response = match Principal::try_from_slice(&call.callee) {
                _ if depth + 1 > MAX_COMPOSITE_DEPTH => Response::Reject(Reject::canister(
                    canister,
                    ErrorCode::CanisterContractViolation,
                    &format!("Composite query call graph is deeper than {MAX_COMPOSITE_DEPTH}"),
                )),
                Ok(callee) => self.run_query(
                    callee,
                    canister,
                    &call.method,
                    call.arg,
                    depth + 1,
                    touched,
                    None,
                ),
                Err(_) => Response::Reject(Reject::new(
                    ErrorCode::CanisterNotFound,
                    "the callee id is not a valid principal",
                )),
            };
            let (api, arg, reject, (fun, env)) = match response {
                Response::Reply(b) => (ApiType::CompositeReplyCallback, b, None, call.on_reply),
                Response::Reject(r) => (
                    ApiType::CompositeRejectCallback,
                    Vec::new(),
                    Some((r.code, r.message)),
                    call.on_reject,
                ),
            };
            let kind = if reject.is_some() {
                ExecutionKind::RejectCallback
            } else {
                ExecutionKind::ReplyCallback
            };
            let mut m = self.message(api, canister, sender, self.limits.max_instructions_query);
            m.arg = arg;
            m.reject = reject;
            let exec = self.execute(
                canister,
                Entry::Table { fun, env },
                m,
                kind,
                "",
                Persist::Keep,
                false,
            );
            if exec.result.is_err() {
                if let Some((fun, env)) = call.on_cleanup {
                    let m = self.message(
                        ApiType::CompositeCleanup,
                        canister,
                        sender,
                        self.limits.max_instructions_query,
                    );
                    self.execute(
                        canister,
                        Entry::Table { fun, env },
                        m,
                        ExecutionKind::Cleanup,
                        "",
                        Persist::Keep,
                        false,
                    );
                }
            }
            result = exec.result;
            msg = exec.msg;
        }
    }

    // ------------------------------------------------------------------
    // Candid helpers
    // ------------------------------------------------------------------

    /// An update call with candid arguments and results.
    pub fn update<A: ArgumentEncoder, R: for<'a> ArgumentDecoder<'a>>(
        &mut self,
        canister: Principal,
        sender: Principal,
        method: &str,
        args: A,
    ) -> Result<R, Error> {
        let arg = encode_args(args)?;
        let bytes = self.update_call(canister, sender, method, arg)?;
        decode_args(&bytes)
    }

    /// A query call with candid arguments and results.
    pub fn query<A: ArgumentEncoder, R: for<'a> ArgumentDecoder<'a>>(
        &mut self,
        canister: Principal,
        sender: Principal,
        method: &str,
        args: A,
    ) -> Result<R, Error> {
        let arg = encode_args(args)?;
        let bytes = self.query_call(canister, sender, method, arg)?;
        decode_args(&bytes)
    }

    /// An update call with one candid argument (`&()` for none) and one
    /// result.
    pub fn update_one<A: CandidType, R: CandidType + for<'a> serde::Deserialize<'a>>(
        &mut self,
        canister: Principal,
        sender: Principal,
        method: &str,
        arg: &A,
    ) -> Result<R, Error> {
        let bytes = self.update_call(canister, sender, method, encode_one(arg)?)?;
        decode_one(&bytes)
    }

    /// A query call with one candid argument (`&()` for none) and one result.
    pub fn query_one<A: CandidType, R: CandidType + for<'a> serde::Deserialize<'a>>(
        &mut self,
        canister: Principal,
        sender: Principal,
        method: &str,
        arg: &A,
    ) -> Result<R, Error> {
        let bytes = self.query_call(canister, sender, method, encode_one(arg)?)?;
        decode_one(&bytes)
    }

    // ------------------------------------------------------------------
    // Management shortcuts (each one an ingress call to aaaaa-aa)
    // ------------------------------------------------------------------

    fn mgmt<A: CandidType, R: CandidType + for<'a> serde::Deserialize<'a>>(
        &mut self,
        sender: Principal,
        method: &str,
        arg: &A,
    ) -> Result<R, Error> {
        self.update_one(Principal::management_canister(), sender, method, arg)
    }

    /// Creates an empty canister controlled by `controller`, with the
    /// default cycles.
    pub fn create_canister(&mut self, controller: Principal) -> Result<Principal, Error> {
        self.create_canister_with(
            controller,
            management::ProvisionalCreateCanisterArgs::default(),
        )
    }

    /// `provisional_create_canister_with_cycles` with explicit arguments.
    pub fn create_canister_with(
        &mut self,
        sender: Principal,
        args: management::ProvisionalCreateCanisterArgs,
    ) -> Result<Principal, Error> {
        let r: management::CanisterIdRecord =
            self.mgmt(sender, "provisional_create_canister_with_cycles", &args)?;
        Ok(r.canister_id)
    }

    /// `install_code` in any mode.
    pub fn install_code(
        &mut self,
        sender: Principal,
        canister: Principal,
        mode: CanisterInstallMode,
        wasm_module: Vec<u8>,
        arg: Vec<u8>,
    ) -> Result<(), Error> {
        let args = management::InstallCodeArgs {
            mode,
            canister_id: canister,
            wasm_module,
            arg,
            sender_canister_version: None,
        };
        self.mgmt(sender, "install_code", &args)
    }

    pub fn install_canister(
        &mut self,
        sender: Principal,
        canister: Principal,
        wasm: Vec<u8>,
        arg: Vec<u8>,
    ) -> Result<(), Error> {
        self.install_code(sender, canister, CanisterInstallMode::Install, wasm, arg)
    }

    pub fn reinstall_canister(
        &mut self,
        sender: Principal,
        canister: Principal,
        wasm: Vec<u8>,
        arg: Vec<u8>,
    ) -> Result<(), Error> {
        self.install_code(sender, canister, CanisterInstallMode::Reinstall, wasm, arg)
    }

    pub fn upgrade_canister(
        &mut self,
        sender: Principal,
        canister: Principal,
        wasm: Vec<u8>,
        arg: Vec<u8>,
    ) -> Result<(), Error> {
        self.install_code(
            sender,
            canister,
            CanisterInstallMode::Upgrade(None),
            wasm,
            arg,
        )
    }

    /// `upload_chunk`; the chunk's SHA-256.
    pub fn upload_chunk(
        &mut self,
        sender: Principal,
        canister: Principal,
        chunk: Vec<u8>,
    ) -> Result<Vec<u8>, Error> {
        let r: management::ChunkHash = self.mgmt(
            sender,
            "upload_chunk",
            &management::UploadChunkArgs {
                canister_id: canister,
                chunk,
            },
        )?;
        Ok(r.hash)
    }

    /// Uploads `wasm` in chunks of at most `chunk_size` bytes and installs
    /// it with `install_chunked_code` (store canister = target).
    pub fn install_chunked(
        &mut self,
        sender: Principal,
        canister: Principal,
        mode: CanisterInstallMode,
        wasm: &[u8],
        chunk_size: usize,
        arg: Vec<u8>,
    ) -> Result<(), Error> {
        let mut hashes = Vec::new();
        for chunk in wasm.chunks(chunk_size.max(1)) {
            hashes.push(management::ChunkHash {
                hash: self.upload_chunk(sender, canister, chunk.to_vec())?,
            });
        }
        let args = management::InstallChunkedCodeArgs {
            mode,
            target_canister: canister,
            store_canister: None,
            chunk_hashes_list: hashes,
            wasm_module_hash: Sha256::digest(wasm).to_vec(),
            arg,
            sender_canister_version: None,
        };
        self.mgmt(sender, "install_chunked_code", &args)
    }

    /// Installs `wasm` in any `mode` whatever its size: with `install_code`
    /// when the message fits the ingress limit, otherwise through the chunk
    /// store (1 MiB chunks, `install_chunked_code`), which is emptied
    /// afterwards.
    pub fn install_wasm(
        &mut self,
        sender: Principal,
        canister: Principal,
        mode: CanisterInstallMode,
        wasm: Vec<u8>,
        arg: Vec<u8>,
    ) -> Result<(), Error> {
        // Candid framing of install_code's arguments is well under 1 KiB.
        let fits = (wasm.len() + arg.len() + 1024) as u64 <= self.limits.max_ingress_bytes;
        if fits {
            return self.install_code(sender, canister, mode, wasm, arg);
        }
        let chunk = usize::try_from(self.limits.max_chunk_bytes).unwrap_or(usize::MAX);
        let result = self.install_chunked(sender, canister, mode, &wasm, chunk, arg);
        let cleared: Result<(), Error> = self.mgmt(
            sender,
            "clear_chunk_store",
            &management::CanisterIdRecord {
                canister_id: canister,
            },
        );
        result.and(cleared)
    }

    pub fn uninstall_code(&mut self, sender: Principal, canister: Principal) -> Result<(), Error> {
        self.mgmt(
            sender,
            "uninstall_code",
            &management::CanisterIdRecord {
                canister_id: canister,
            },
        )
    }

    pub fn start_canister(&mut self, sender: Principal, canister: Principal) -> Result<(), Error> {
        self.mgmt(
            sender,
            "start_canister",
            &management::CanisterIdRecord {
                canister_id: canister,
            },
        )
    }

    pub fn stop_canister(&mut self, sender: Principal, canister: Principal) -> Result<(), Error> {
        self.mgmt(
            sender,
            "stop_canister",
            &management::CanisterIdRecord {
                canister_id: canister,
            },
        )
    }

    pub fn delete_canister(&mut self, sender: Principal, canister: Principal) -> Result<(), Error> {
        self.mgmt(
            sender,
            "delete_canister",
            &management::CanisterIdRecord {
                canister_id: canister,
            },
        )
    }

    pub fn canister_status(
        &mut self,
        sender: Principal,
        canister: Principal,
    ) -> Result<CanisterStatusResult, Error> {
        self.mgmt(
            sender,
            "canister_status",
            &management::CanisterIdRecord {
                canister_id: canister,
            },
        )
    }

    /// `update_settings` with any settings.
    pub fn update_settings(
        &mut self,
        sender: Principal,
        canister: Principal,
        settings: management::CanisterSettings,
    ) -> Result<(), Error> {
        let args = management::UpdateSettingsArgs {
            canister_id: canister,
            settings,
            sender_canister_version: None,
        };
        self.mgmt(sender, "update_settings", &args)
    }

    pub fn set_controllers(
        &mut self,
        sender: Principal,
        canister: Principal,
        controllers: Vec<Principal>,
    ) -> Result<(), Error> {
        let args = management::UpdateSettingsArgs {
            canister_id: canister,
            settings: management::CanisterSettings {
                controllers: Some(controllers),
                ..Default::default()
            },
            sender_canister_version: None,
        };
        self.mgmt(sender, "update_settings", &args)
    }

    // ------------------------------------------------------------------
    // Inspection
    // ------------------------------------------------------------------

    /// Every execution so far, in order.
    pub fn executions(&self) -> &[ExecutionRecord] {
        &self.records
    }

    /// The last execution in `canister` of `method` (any kind if empty).
    pub fn last_execution(&self, canister: Principal, method: &str) -> Option<&ExecutionRecord> {
        self.records
            .iter()
            .rev()
            .find(|r| r.canister == canister && (method.is_empty() || r.method == method))
    }

    /// Every `debug_print` (and trap) of `canister`, in order.
    pub fn logs(&self, canister: Principal) -> Vec<&LogRecord> {
        self.logs
            .iter()
            .filter(|l| l.canister == canister)
            .collect()
    }

    /// Every `raw_rand` answer so far, with the canister that asked.
    pub fn raw_rand_answers(&self) -> &[(Principal, Vec<u8>)] {
        &self.random_answers
    }

    pub fn canister_exists(&self, canister: Principal) -> bool {
        self.canisters.contains_key(&canister)
    }

    pub fn cycle_balance(&self, canister: Principal) -> Option<u128> {
        self.canisters.get(&canister).map(|c| c.cycles)
    }

    pub fn controllers(&self, canister: Principal) -> Option<Vec<Principal>> {
        self.canisters.get(&canister).map(|c| c.controllers.clone())
    }

    pub fn canister_version(&self, canister: Principal) -> Option<u64> {
        self.canisters.get(&canister).map(|c| c.version)
    }

    pub fn module_hash(&self, canister: Principal) -> Option<[u8; 32]> {
        self.canisters.get(&canister).and_then(|c| c.module_hash())
    }

    pub fn certified_data(&self, canister: Principal) -> Option<Vec<u8>> {
        self.canisters
            .get(&canister)
            .map(|c| c.certified_data.clone())
    }

    /// The committed stable memory of `canister`.
    pub fn stable_memory(&self, canister: Principal) -> Option<&[u8]> {
        self.canisters.get(&canister).map(|c| c.stable.bytes())
    }

    /// Heap size in bytes (0 when no code is installed).
    pub fn heap_size(&self, canister: Principal) -> Option<usize> {
        self.canisters
            .get(&canister)
            .map(|c| c.wasm.as_ref().map(|w| w.committed_heap_len()).unwrap_or(0))
    }

    /// The global timer of `canister` (0 = not set).
    pub fn global_timer(&self, canister: Principal) -> Option<u64> {
        self.canisters.get(&canister).map(|c| c.global_timer)
    }

    /// The ids of all canisters, in order.
    pub fn canister_ids(&self) -> Vec<Principal> {
        self.canisters.keys().copied().collect()
    }

    /// The `icp:public <name>` custom sections of the module installed in
    /// `canister`, by name (what the state tree certifies under
    /// `/canister/<id>/metadata/<name>`); empty without a module.
    pub fn public_metadata(&self, canister: Principal) -> Option<Vec<(String, Vec<u8>)>> {
        self.canisters.get(&canister).map(|c| {
            c.wasm
                .as_ref()
                .map(|w| {
                    w.compiled
                        .info
                        .custom_sections
                        .iter()
                        .filter(|(_, (public, _))| *public)
                        .map(|(name, (_, bytes))| (name.clone(), bytes.clone()))
                        .collect()
                })
                .unwrap_or_default()
        })
    }

    /// The root key canisters see with `ic0.root_key_*`: the one in
    /// [`Config::root_key`], or a placeholder shaped like the IC's.
    pub fn root_key(&self) -> &[u8] {
        &self.root_key
    }

    /// Reject code for a [`RejectCode`] number (1-6).
    pub fn reject_code(n: u32) -> Option<RejectCode> {
        Some(match n {
            1 => RejectCode::SysFatal,
            2 => RejectCode::SysTransient,
            3 => RejectCode::DestinationInvalid,
            4 => RejectCode::CanisterReject,
            5 => RejectCode::CanisterError,
            6 => RejectCode::SysUnknown,
            _ => return None,
        })
    }
}

/// Compiled modules on disk: `<dir>/<sha256 of the instrumented module>.cwasm`
/// holding the SHA-256 of the payload followed by wasmtime's serialized
/// module. Any problem (missing, corrupt, from another wasmtime) means
/// compiling again; the cache never makes an install fail.
mod disk_cache {
    use std::path::{Path, PathBuf};

    use sha2::{Digest, Sha256};
    use wasmtime::{Engine, Module};

    fn path(dir: &Path, wasm: &[u8]) -> PathBuf {
        dir.join(format!("{}.cwasm", hex::encode(Sha256::digest(wasm))))
    }

    pub fn load(engine: &Engine, dir: &Path, wasm: &[u8]) -> Option<Module> {
        let bytes = std::fs::read(path(dir, wasm)).ok()?;
        if bytes.len() < 32 {
            return None;
        }
        let (hash, payload) = bytes.split_at(32);
        if Sha256::digest(payload).as_slice() != hash {
            return None;
        }
        // SAFETY: `payload` is exactly what `Module::serialize` wrote for
        // this module (its SHA-256 matches the one stored beside it), and
        // wasmtime refuses artifacts of another version or configuration.
        unsafe { Module::deserialize(engine, payload) }.ok()
    }

    pub fn store(dir: &Path, wasm: &[u8], module: &Module) {
        let Ok(payload) = module.serialize() else {
            return;
        };
        let mut bytes = Sha256::digest(&payload).to_vec();
        bytes.extend_from_slice(&payload);
        let target = path(dir, wasm);
        let tmp = target.with_extension(format!("tmp{}", std::process::id()));
        let written = std::fs::create_dir_all(dir)
            .and_then(|()| std::fs::write(&tmp, &bytes))
            .and_then(|()| std::fs::rename(&tmp, &target));
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
    }
}

fn encode_args<A: ArgumentEncoder>(args: A) -> Result<Vec<u8>, Error> {
    candid::encode_args(args).map_err(|e| Error::Candid {
        expected: "encodable arguments".into(),
        found: e.to_string(),
    })
}

fn decode_args<R: for<'a> ArgumentDecoder<'a>>(bytes: &[u8]) -> Result<R, Error> {
    candid::decode_args(bytes).map_err(|e| Error::Candid {
        expected: format!("a reply of type {}", std::any::type_name::<R>()),
        found: e.to_string(),
    })
}

fn encode_one<A: CandidType>(arg: &A) -> Result<Vec<u8>, Error> {
    candid::encode_one(arg).map_err(|e| Error::Candid {
        expected: "an encodable argument".into(),
        found: e.to_string(),
    })
}

fn decode_one<R: CandidType + for<'a> serde::Deserialize<'a>>(bytes: &[u8]) -> Result<R, Error> {
    candid::decode_one(bytes).map_err(|e| Error::Candid {
        expected: format!("a reply of type {}", std::any::type_name::<R>()),
        found: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disk_cache_round_trips_and_refuses_corrupt_files() {
        let engine = shared_engine().unwrap();
        let dir =
            std::env::temp_dir().join(format!("local_replica_cache_test_{}", std::process::id()));
        let wasm = b"\0asm\x01\0\0\0".to_vec();
        assert!(disk_cache::load(&engine, &dir, &wasm).is_none());
        let module = Module::new(&engine, &wasm).unwrap();
        disk_cache::store(&dir, &wasm, &module);
        assert!(disk_cache::load(&engine, &dir, &wasm).is_some());
        let file = std::fs::read_dir(&dir)
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        let mut bytes = std::fs::read(&file).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&file, &bytes).unwrap();
        assert!(disk_cache::load(&engine, &dir, &wasm).is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_replica_can_move_between_threads() {
        fn assert_send<T: Send>() {}
        assert_send::<LocalReplica>();
    }

    #[test]
    fn canister_ids_follow_the_ic_allocation() {
        assert_eq!(canister_id(0).to_text(), "rwlgt-iiaaa-aaaaa-aaaaa-cai");
        assert_eq!(canister_id(1).to_text(), "rrkah-fqaaa-aaaaa-aaaaq-cai");
        assert_eq!(Principal::anonymous().to_text(), "2vxsx-fae");
    }
}
