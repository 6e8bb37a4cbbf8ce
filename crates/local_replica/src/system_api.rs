//! The System API (`ic0.*`) as host functions for wasmtime.
//!
//! Every function ic-cdk 0.20 can import (the `ic0` crate 1.2) is defined,
//! plus the 32-bit stable memory functions of older CDKs. Each one checks
//! the spec's availability table for the kind of message running
//! ([`ApiType`]) and traps with a contract violation where the function is
//! not available, bounds-checks every pointer into the heap, and charges a
//! small instruction cost (a fixed overhead plus one per byte copied) so
//! that `performance_counter` and the instruction limits see host work.
//!
//! The per-message state the functions read and write is [`MessageState`];
//! the replica fills it before a message and harvests it afterwards (reply,
//! outgoing calls, accepted cycles, stable memory, logs).

use candid::Principal;
use wasmtime::{Caller, Linker, Memory, ResourceLimiter};

use crate::costs;
use crate::error::{ErrorCode, RejectCode};
use crate::limits::{Limits, OS_PAGE, WASM_PAGE};

/// The kinds of execution the specification's availability table names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiType {
    /// The module's `(start)` function.
    Start,
    /// `canister_init` and `canister_post_upgrade`.
    Init,
    PreUpgrade,
    Update,
    ReplicatedQuery,
    NonReplicatedQuery,
    CompositeQuery,
    ReplyCallback,
    RejectCallback,
    CompositeReplyCallback,
    CompositeRejectCallback,
    Cleanup,
    CompositeCleanup,
    InspectMessage,
    /// `canister_global_timer` and `canister_heartbeat`.
    SystemTask,
}

const I: u32 = 1 << 0;
const G: u32 = 1 << 1;
const U: u32 = 1 << 2;
const RQ: u32 = 1 << 3;
const NRQ: u32 = 1 << 4;
const CQ: u32 = 1 << 5;
const RY: u32 = 1 << 6;
const RT: u32 = 1 << 7;
const CRY: u32 = 1 << 8;
const CRT: u32 = 1 << 9;
const C: u32 = 1 << 10;
const CC: u32 = 1 << 11;
const F: u32 = 1 << 12;
const T: u32 = 1 << 13;
const S: u32 = 1 << 14;
/// `*` in the spec: everywhere but the start function.
const STAR: u32 = I | G | U | RQ | NRQ | CQ | RY | RT | CRY | CRT | C | CC | F | T;
const ALL: u32 = STAR | S;

impl ApiType {
    fn bit(self) -> u32 {
        match self {
            ApiType::Start => S,
            ApiType::Init => I,
            ApiType::PreUpgrade => G,
            ApiType::Update => U,
            ApiType::ReplicatedQuery => RQ,
            ApiType::NonReplicatedQuery => NRQ,
            ApiType::CompositeQuery => CQ,
            ApiType::ReplyCallback => RY,
            ApiType::RejectCallback => RT,
            ApiType::CompositeReplyCallback => CRY,
            ApiType::CompositeRejectCallback => CRT,
            ApiType::Cleanup => C,
            ApiType::CompositeCleanup => CC,
            ApiType::InspectMessage => F,
            ApiType::SystemTask => T,
        }
    }

    /// The name the real replica uses in its errors.
    pub fn mode_name(self) -> &'static str {
        match self {
            ApiType::Start => "start",
            ApiType::Init => "init",
            ApiType::PreUpgrade => "pre upgrade",
            ApiType::Update => "update",
            ApiType::ReplicatedQuery => "replicated query",
            ApiType::NonReplicatedQuery => "non replicated query",
            ApiType::CompositeQuery => "composite query",
            ApiType::ReplyCallback => "reply callback",
            ApiType::RejectCallback => "reject callback",
            ApiType::CompositeReplyCallback => "composite reply callback",
            ApiType::CompositeRejectCallback => "composite reject callback",
            ApiType::Cleanup => "cleanup",
            ApiType::CompositeCleanup => "composite cleanup",
            ApiType::InspectMessage => "inspect message",
            ApiType::SystemTask => "system task",
        }
    }

    /// Whether the execution is replicated (`ic0.in_replicated_execution`).
    pub fn replicated(self) -> bool {
        !matches!(
            self,
            ApiType::NonReplicatedQuery
                | ApiType::CompositeQuery
                | ApiType::CompositeReplyCallback
                | ApiType::CompositeRejectCallback
                | ApiType::CompositeCleanup
                | ApiType::InspectMessage
        )
    }
}

/// A trap raised by a host function.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub(crate) struct HostTrap {
    pub code: ErrorCode,
    pub message: String,
}

fn trap<T>(code: ErrorCode, message: impl Into<String>) -> wasmtime::Result<T> {
    Err(wasmtime::Error::new(HostTrap {
        code,
        message: message.into(),
    }))
}

fn violation<T>(message: impl Into<String>) -> wasmtime::Result<T> {
    trap(ErrorCode::CanisterContractViolation, message)
}

/// A response made by the message (`msg_reply` / `msg_reject`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Payload {
    Reply(Vec<u8>),
    Reject { code: RejectCode, message: String },
}

/// A call under construction (`call_new` .. `call_perform`).
#[derive(Debug, Clone)]
pub(crate) struct PendingCall {
    pub callee: Vec<u8>,
    pub method: String,
    pub arg: Vec<u8>,
    pub cycles: u128,
    pub on_reply: (u32, u32),
    pub on_reject: (u32, u32),
    pub on_cleanup: Option<(u32, u32)>,
    pub timeout_secs: Option<u32>,
    /// Cycles prepaid at `call_perform` for the callback's execution and
    /// for the transmission of the largest response.
    pub prepaid_callback: u128,
    pub prepaid_response: u128,
}

/// Stable memory with an undo journal: writes made by a message can be
/// undone if the message traps, without copying the whole memory.
#[derive(Debug, Default)]
pub(crate) struct StableMemory {
    data: Vec<u8>,
    /// Size at the start of the current message.
    begin_len: usize,
    /// Original contents of 4 KiB pages written in the current message.
    saved: std::collections::HashMap<usize, Box<[u8]>>,
    /// Pages written or grown since the last checkpoint (rolled-back
    /// writes included: a page marked needlessly only costs a hash).
    dirty: crate::checkpoint::DirtyPages,
}

const JOURNAL_PAGE: usize = 4096;

impl StableMemory {
    pub fn pages(&self) -> u64 {
        self.data.len() as u64 / WASM_PAGE
    }

    pub fn bytes(&self) -> &[u8] {
        &self.data
    }

    /// A memory holding `data` (a checkpoint's), with nothing dirty.
    pub fn from_checkpoint(data: Vec<u8>) -> StableMemory {
        let mut m = StableMemory {
            begin_len: data.len(),
            data,
            ..StableMemory::default()
        };
        m.dirty.clean();
        m
    }

    /// The pages changed since the last checkpoint.
    pub fn dirty(&self) -> &crate::checkpoint::DirtyPages {
        &self.dirty
    }

    /// A checkpoint holds the memory as it is: nothing is dirty.
    pub fn mark_checkpointed(&mut self) {
        self.dirty.clean();
    }

    /// Starts a message: the journal is empty.
    pub fn begin(&mut self) {
        self.begin_len = self.data.len();
        self.saved.clear();
    }

    pub fn commit(&mut self) {
        self.saved.clear();
        self.begin_len = self.data.len();
    }

    pub fn rollback(&mut self) {
        self.data.truncate(self.begin_len);
        for (page, bytes) in self.saved.drain() {
            let start = page * JOURNAL_PAGE;
            if start < self.data.len() {
                let end = (start + bytes.len()).min(self.data.len());
                self.data[start..end].copy_from_slice(&bytes[..end - start]);
            }
        }
    }

    /// Grows by `pages`; the old size in pages, or -1.
    pub fn grow(&mut self, pages: u64, max_pages: u64) -> i64 {
        let old = self.pages();
        let Some(new) = old.checked_add(pages) else {
            return -1;
        };
        if new > max_pages {
            return -1;
        }
        let extra = (pages * WASM_PAGE) as usize;
        if self.data.try_reserve_exact(extra).is_err() {
            return -1;
        }
        self.data.resize(self.data.len() + extra, 0);
        self.dirty.mark(self.data.len() - extra, self.data.len());
        old as i64
    }

    fn write(&mut self, offset: u64, bytes: &[u8]) -> bool {
        let Some(end) = offset.checked_add(bytes.len() as u64) else {
            return false;
        };
        if end > self.data.len() as u64 {
            return false;
        }
        let (start, end) = (offset as usize, end as usize);
        if start < end {
            for page in start / JOURNAL_PAGE..=(end - 1) / JOURNAL_PAGE {
                let page_start = page * JOURNAL_PAGE;
                if page_start >= self.begin_len {
                    continue; // grown in this message: truncated on rollback
                }
                let page_end = (page_start + JOURNAL_PAGE).min(self.begin_len);
                let data = &self.data;
                self.saved
                    .entry(page)
                    .or_insert_with(|| data[page_start..page_end].into());
            }
        }
        self.data[start..end].copy_from_slice(bytes);
        self.dirty.mark(start, end);
        true
    }

    fn read(&self, offset: u64, size: u64) -> Option<&[u8]> {
        let end = offset.checked_add(size)?;
        if end > self.data.len() as u64 {
            return None;
        }
        Some(&self.data[offset as usize..end as usize])
    }

    /// Empties the memory (uninstall, reinstall).
    pub fn clear(&mut self) {
        *self = StableMemory::default();
    }
}

/// The stable memory pages (4 KiB) one execution has read or written, held
/// against the IC's per-execution limits.
#[derive(Debug, Default)]
pub(crate) struct StablePages {
    accessed: std::collections::HashSet<u64>,
    dirty: std::collections::HashSet<u64>,
}

impl StablePages {
    /// Pages of `[offset, offset + size)` (`size` > 0).
    fn range(offset: u64, size: u64) -> std::ops::RangeInclusive<u64> {
        offset / OS_PAGE..=(offset + size - 1) / OS_PAGE
    }

    /// Records an access of `size` bytes at `offset` (a write if `write`)
    /// within `limits` (accessed, dirty); the pages dirtied for the first
    /// time, or which limit was exceeded.
    fn touch(
        &mut self,
        offset: u64,
        size: u64,
        write: bool,
        (accessed_limit, dirty_limit): (u64, u64),
    ) -> Result<u64, StableLimit> {
        if size == 0 {
            return Ok(0);
        }
        let pages = Self::range(offset, size);
        let new_accessed = pages.clone().filter(|p| !self.accessed.contains(p)).count() as u64;
        if self.accessed.len() as u64 + new_accessed > accessed_limit {
            return Err(StableLimit::Accessed);
        }
        let mut new_dirty = 0;
        if write {
            new_dirty = pages.clone().filter(|p| !self.dirty.contains(p)).count() as u64;
            if self.dirty.len() as u64 + new_dirty > dirty_limit {
                return Err(StableLimit::Dirty);
            }
            self.dirty.extend(pages.clone());
        }
        self.accessed.extend(pages);
        Ok(new_dirty)
    }
}

/// Which per-execution stable memory limit an access would exceed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StableLimit {
    Accessed,
    Dirty,
}

/// Everything a message can see and change through the System API.
#[derive(Debug)]
pub(crate) struct MessageState {
    pub api: ApiType,
    pub canister_id: Principal,
    pub subnet_id: Principal,
    pub caller: Principal,
    pub method_name: String,
    /// The argument, or the reply data in a reply callback.
    pub arg: Vec<u8>,
    pub reject: Option<(RejectCode, String)>,
    pub deadline: u64,
    /// The call context was responded to by an earlier message.
    pub replied_before: bool,
    pub response: Option<Payload>,
    pub reply_buf: Vec<u8>,
    pub cycles_available: u128,
    pub cycles_accepted: u128,
    pub cycles_refunded: u128,
    pub balance: u128,
    pub status_code: u32,
    pub version: u64,
    pub controllers: Vec<Principal>,
    /// The canister's environment variables (its settings), by name.
    pub env_vars: std::collections::BTreeMap<String, String>,
    pub time: u64,
    pub global_timer: u64,
    pub certified_data: Vec<u8>,
    pub certified_data_changed: bool,
    pub stable: StableMemory,
    /// Stable memory pages this execution read or wrote.
    pub stable_pages: StablePages,
    /// Fees and the freezing threshold, where the execution may spend
    /// cycles (`None`: nothing is charged, as in queries).
    pub cycles: Option<crate::cycles::CyclesContext>,
    pub pending_call: Option<PendingCall>,
    pub calls: Vec<PendingCall>,
    pub logs: Vec<String>,
    pub accepted_message: bool,
    pub fuel_limit: u64,
    /// Instructions of earlier messages of the same call context.
    pub context_instructions: u64,
    pub root_key: std::sync::Arc<Vec<u8>>,
    /// The certificate of the canister's certified data, in a
    /// non-replicated query answered with one.
    pub data_certificate: Option<std::sync::Arc<Vec<u8>>>,
    pub limits: std::sync::Arc<Limits>,
}

impl MessageState {
    pub fn new(
        api: ApiType,
        canister_id: Principal,
        caller: Principal,
        limits: std::sync::Arc<Limits>,
        root_key: std::sync::Arc<Vec<u8>>,
    ) -> MessageState {
        MessageState {
            api,
            canister_id,
            subnet_id: Principal::management_canister(),
            caller,
            method_name: String::new(),
            arg: Vec::new(),
            reject: None,
            deadline: 0,
            replied_before: false,
            response: None,
            reply_buf: Vec::new(),
            cycles_available: 0,
            cycles_accepted: 0,
            cycles_refunded: 0,
            balance: 0,
            status_code: 1,
            version: 0,
            controllers: Vec::new(),
            env_vars: std::collections::BTreeMap::new(),
            time: 0,
            global_timer: 0,
            certified_data: Vec::new(),
            certified_data_changed: false,
            stable: StableMemory::default(),
            stable_pages: StablePages::default(),
            cycles: None,
            pending_call: None,
            calls: Vec::new(),
            logs: Vec::new(),
            accepted_message: false,
            fuel_limit: 0,
            context_instructions: 0,
            root_key,
            data_certificate: None,
            limits,
        }
    }

    fn replied(&self) -> bool {
        self.replied_before || self.response.is_some()
    }

    /// The balance above the freezing threshold (what may be spent).
    pub fn liquid_balance(&self) -> u128 {
        let threshold = self.cycles.as_ref().map(|c| c.threshold()).unwrap_or(0);
        self.balance.saturating_sub(threshold)
    }

    /// Grows the canister's memory by `bytes` if the balance still covers
    /// the freezing threshold of the larger memory (trap otherwise).
    pub fn grow_memory(&mut self, bytes: u64) -> wasmtime::Result<()> {
        let balance = self.balance;
        match self.cycles.as_mut() {
            Some(ctx) => ctx
                .grow(balance, bytes)
                .or_else(|message| trap(ErrorCode::InsufficientCyclesInMemoryGrow, message)),
            None => Ok(()),
        }
    }

    /// The IC's stable memory page limits (accessed, dirtied) for this kind
    /// of execution: installs and upgrades, queries, or other messages.
    fn stable_page_limits(&self) -> (u64, u64) {
        let pick = |l: &crate::limits::StablePageLimit| match self.api {
            ApiType::Init | ApiType::PreUpgrade => l.upgrade,
            ApiType::ReplicatedQuery
            | ApiType::NonReplicatedQuery
            | ApiType::CompositeQuery
            | ApiType::CompositeReplyCallback
            | ApiType::CompositeRejectCallback
            | ApiType::CompositeCleanup
            | ApiType::InspectMessage => l.query,
            ApiType::Start
            | ApiType::Update
            | ApiType::ReplyCallback
            | ApiType::RejectCallback
            | ApiType::Cleanup
            | ApiType::SystemTask => l.message,
        };
        (
            pick(&self.limits.stable_accessed_pages),
            pick(&self.limits.stable_dirty_pages),
        )
    }

    /// The error for an access over a stable memory limit, worded as the
    /// IC's.
    fn stable_limit_error(&self, which: StableLimit) -> HostTrap {
        let kb = |pages: u64| pages * (OS_PAGE / 1024);
        let message = match which {
            StableLimit::Accessed => {
                let l = &self.limits.stable_accessed_pages;
                format!(
                    "Exceeded the limit for the number of accessed pages in the stable memory in a single \
                     message execution: limit {} KB for regular messages, {} KB for upgrade messages \
                     and {} KB for queries.",
                    kb(l.message),
                    kb(l.upgrade),
                    kb(l.query)
                )
            }
            StableLimit::Dirty => {
                let l = &self.limits.stable_dirty_pages;
                format!(
                    "Exceeded the limit for the number of modified pages in the stable memory in a single \
                     execution: limit {} KB for regular messages, {} KB for upgrade messages and {} KB \
                     for queries.",
                    kb(l.message),
                    kb(l.upgrade),
                    kb(l.query)
                )
            }
        };
        HostTrap {
            code: ErrorCode::CanisterMemoryAccessLimitExceeded,
            message: format!("Canister exceeded memory access limits: {message}"),
        }
    }
}

/// The data of each canister's wasmtime store.
pub(crate) struct HostState {
    pub msg: Option<Box<MessageState>>,
    pub memory: Option<Memory>,
    /// The most the heap can grow to: beyond it `memory.grow` returns -1
    /// (the 4 GiB of a 32-bit memory, or the replica's configured maximum).
    pub max_heap_bytes: usize,
    /// The canister's `wasm_memory_limit` (0: none): growing beyond it
    /// traps, as on the IC (not enforced in queries).
    pub wasm_memory_limit: u64,
}

impl ResourceLimiter for HostState {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max_heap_bytes {
            return Ok(false);
        }
        if self.wasm_memory_limit != 0 && desired as u64 > self.wasm_memory_limit {
            return trap(
                ErrorCode::CanisterWasmMemoryLimitExceeded,
                format!(
                    "Canister exceeded its current Wasm memory limit of {} bytes. The peak Wasm memory \
                     usage was {desired} bytes. If the canister reaches 4GiB, then it may stop \
                     functioning and may become unrecoverable. Please reach out to the canister owner \
                     to investigate the reason for the increased memory usage. It might be necessary \
                     to move data from the Wasm memory to the stable memory. If such high Wasm memory \
                     usage is expected and safe, then the developer can increase the Wasm memory limit \
                     in the canister settings.",
                    self.wasm_memory_limit
                ),
            );
        }
        if let Some(m) = self.msg.as_deref_mut() {
            let grown = desired.saturating_sub(current) as u64;
            m.grow_memory(grown)?;
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 1 << 20)
    }
}

type Ctx<'a> = Caller<'a, HostState>;

/// The instruction limit of the running message (0 outside one).
fn fuel_limit(caller: &Ctx<'_>) -> u64 {
    caller
        .data()
        .msg
        .as_ref()
        .map(|m| m.fuel_limit)
        .unwrap_or(0)
}

fn out_of_instructions<T>(caller: &Ctx<'_>) -> wasmtime::Result<T> {
    let limit = fuel_limit(caller);
    trap(
        ErrorCode::CanisterInstructionLimitExceeded,
        format!(
            "Canister exceeded the limit of {limit} instructions for single message execution."
        ),
    )
}

/// Deducts `amount` instructions from the running message.
fn charge(caller: &mut Ctx<'_>, amount: u64) -> wasmtime::Result<()> {
    let fuel = caller.get_fuel()?;
    if fuel < amount {
        caller.set_fuel(0)?;
        return out_of_instructions(caller);
    }
    caller.set_fuel(fuel - amount)?;
    Ok(())
}

/// Charges what the System API call `name` costs on the IC for `bytes`
/// bytes (the `call` instruction itself was charged as an operator).
fn charge_call(caller: &mut Ctx<'_>, name: &str, bytes: u64) -> wasmtime::Result<()> {
    charge(caller, costs::system_api_charge(name, bytes).unwrap_or(0))
}

/// Checks availability and charges the overhead; the message state.
fn enter<'c>(
    caller: &'c mut Ctx<'_>,
    name: &str,
    allowed: u32,
    bytes: u64,
) -> wasmtime::Result<&'c mut MessageState> {
    charge_call(caller, name, bytes)?;
    let Some(msg) = caller.data_mut().msg.as_deref_mut() else {
        return violation(format!("\"ic0.{name}\" called outside of a message"));
    };
    if msg.api.bit() & allowed == 0 {
        return violation(format!(
            "\"ic0.{name}\" cannot be executed in {} mode",
            msg.api.mode_name()
        ));
    }
    Ok(msg)
}

fn out_of_bounds<T>(name: &str, addr: u64, size: u64, heap: usize) -> wasmtime::Result<T> {
    trap(
        ErrorCode::CanisterTrapped,
        format!(
            "Canister trapped: heap out of bounds: ic0.{name} accessed [{addr}, {}) of a heap of {heap} bytes",
            addr as u128 + size as u128
        ),
    )
}

fn read_heap(caller: &mut Ctx<'_>, name: &str, src: u64, size: u64) -> wasmtime::Result<Vec<u8>> {
    let Some(memory) = caller.data().memory else {
        return out_of_bounds(name, src, size, 0);
    };
    let data = memory.data(&*caller);
    match src.checked_add(size) {
        Some(end) if end <= data.len() as u64 => Ok(data[src as usize..end as usize].to_vec()),
        _ => out_of_bounds(name, src, size, data.len()),
    }
}

fn write_heap(caller: &mut Ctx<'_>, name: &str, dst: u64, bytes: &[u8]) -> wasmtime::Result<()> {
    let Some(memory) = caller.data().memory else {
        return out_of_bounds(name, dst, bytes.len() as u64, 0);
    };
    let data = memory.data_mut(&mut *caller);
    match dst.checked_add(bytes.len() as u64) {
        Some(end) if end <= data.len() as u64 => {
            data[dst as usize..end as usize].copy_from_slice(bytes);
            Ok(())
        }
        _ => out_of_bounds(name, dst, bytes.len() as u64, data.len()),
    }
}

/// `*_copy(dst, offset, size)` of a byte string.
fn copy_out(
    caller: &mut Ctx<'_>,
    name: &str,
    source: &[u8],
    dst: u64,
    offset: u64,
    size: u64,
) -> wasmtime::Result<()> {
    let end = offset.checked_add(size);
    match end {
        Some(end) if end <= source.len() as u64 => {
            write_heap(caller, name, dst, &source[offset as usize..end as usize])
        }
        _ => trap(
            ErrorCode::CanisterTrapped,
            format!(
                "Canister trapped: ic0.{name}: offset {offset} + size {size} exceeds the {} bytes available",
                source.len()
            ),
        ),
    }
}

/// A cycle amount for the 64-bit API, which traps when it does not fit.
fn fits_u64(name: &str, amount: u128) -> wasmtime::Result<i64> {
    match u64::try_from(amount) {
        Ok(v) => Ok(v as i64),
        Err(_) => violation(format!(
            "ic0.{name}: {amount} cycles do not fit in 64 bits; use the 128-bit function"
        )),
    }
}

fn u128_of(high: i64, low: i64) -> u128 {
    ((high as u64 as u128) << 64) | (low as u64 as u128)
}

/// The instructions used so far in the running message.
fn instructions_so_far(caller: &Ctx<'_>) -> u64 {
    let limit = fuel_limit(caller);
    limit.saturating_sub(caller.get_fuel().unwrap_or(0))
}

/// Type of an `ic0` import: parameters and results ('i' = i32, 'l' = i64).
const SIGNATURES: &[(&str, &str, &str)] = &[
    ("msg_arg_data_size", "", "i"),
    ("msg_arg_data_copy", "iii", ""),
    ("msg_caller_size", "", "i"),
    ("msg_caller_copy", "iii", ""),
    ("msg_caller_info_data_size", "", "i"),
    ("msg_caller_info_data_copy", "iii", ""),
    ("msg_caller_info_signer_size", "", "i"),
    ("msg_caller_info_signer_copy", "iii", ""),
    ("msg_reject_code", "", "i"),
    ("msg_reject_msg_size", "", "i"),
    ("msg_reject_msg_copy", "iii", ""),
    ("msg_deadline", "", "l"),
    ("msg_reply_data_append", "ii", ""),
    ("msg_reply", "", ""),
    ("msg_reject", "ii", ""),
    ("msg_cycles_available128", "i", ""),
    ("msg_cycles_refunded128", "i", ""),
    ("msg_cycles_accept128", "lli", ""),
    ("cycles_burn128", "lli", ""),
    ("msg_cycles_available", "", "l"),
    ("msg_cycles_refunded", "", "l"),
    ("msg_cycles_accept", "l", "l"),
    ("canister_cycle_balance", "", "l"),
    ("call_cycles_add", "l", ""),
    ("canister_self_size", "", "i"),
    ("canister_self_copy", "iii", ""),
    ("canister_cycle_balance128", "i", ""),
    ("canister_liquid_cycle_balance128", "i", ""),
    ("canister_status", "", "i"),
    ("canister_version", "", "l"),
    ("subnet_self_size", "", "i"),
    ("subnet_self_copy", "iii", ""),
    ("subnet_self_node_count", "", "i"),
    ("msg_method_name_size", "", "i"),
    ("msg_method_name_copy", "iii", ""),
    ("accept_message", "", ""),
    ("call_new", "iiiiiiii", ""),
    ("call_on_cleanup", "ii", ""),
    ("call_data_append", "ii", ""),
    ("call_with_best_effort_response", "i", ""),
    ("call_cycles_add128", "ll", ""),
    ("call_perform", "", "i"),
    ("stable64_size", "", "l"),
    ("stable64_grow", "l", "l"),
    ("stable64_write", "lll", ""),
    ("stable64_read", "lll", ""),
    ("stable_size", "", "i"),
    ("stable_grow", "i", "i"),
    ("stable_write", "iii", ""),
    ("stable_read", "iii", ""),
    ("root_key_size", "", "i"),
    ("root_key_copy", "iii", ""),
    ("certified_data_set", "ii", ""),
    ("data_certificate_present", "", "i"),
    ("data_certificate_size", "", "i"),
    ("data_certificate_copy", "iii", ""),
    ("time", "", "l"),
    ("global_timer_set", "l", "l"),
    ("performance_counter", "i", "l"),
    ("is_controller", "ii", "i"),
    ("in_replicated_execution", "", "i"),
    ("cost_call", "lli", ""),
    ("cost_create_canister", "i", ""),
    ("cost_http_request", "lli", ""),
    ("cost_http_request_v2", "iii", ""),
    ("cost_sign_with_ecdsa", "iiii", "i"),
    ("cost_sign_with_schnorr", "iiii", "i"),
    ("cost_vetkd_derive_key", "iiii", "i"),
    ("env_var_count", "", "i"),
    ("env_var_name_size", "i", "i"),
    ("env_var_name_copy", "iiii", ""),
    ("env_var_name_exists", "ii", "i"),
    ("env_var_value_size", "ii", "i"),
    ("env_var_value_copy", "iiiii", ""),
    ("debug_print", "ii", ""),
    ("trap", "ii", ""),
];

/// The names of every `ic0` function the replica provides.
pub fn ic0_functions() -> impl Iterator<Item = &'static str> {
    SIGNATURES.iter().map(|(n, _, _)| *n)
}

/// The wasm type of `ic0.<name>`, if it exists.
pub(crate) fn ic0_signature(
    name: &str,
) -> Option<(Vec<wasmparser::ValType>, Vec<wasmparser::ValType>)> {
    let conv = |s: &str| {
        s.chars()
            .map(|c| {
                if c == 'i' {
                    wasmparser::ValType::I32
                } else {
                    wasmparser::ValType::I64
                }
            })
            .collect::<Vec<_>>()
    };
    SIGNATURES
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, p, r)| (conv(p), conv(r)))
}

/// The wasmtime types of `ic0.<name>`, for tests of the linker.
#[cfg(test)]
pub(crate) fn ic0_wasmtime_signature(
    name: &str,
) -> Option<(Vec<wasmtime::ValType>, Vec<wasmtime::ValType>)> {
    use wasmtime::ValType;
    let conv = |s: &str| {
        s.chars()
            .map(|c| if c == 'i' { ValType::I32 } else { ValType::I64 })
            .collect::<Vec<_>>()
    };
    SIGNATURES
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, p, r)| (conv(p), conv(r)))
}

/// Pseudo cycle fees of a 13-node subnet, for the `cost_*` functions.
pub(crate) mod fees {
    pub const XNET_CALL: u128 = 260_000;
    pub const XNET_BYTE: u128 = 1_000;
    pub const CREATE_CANISTER: u128 = 500_000_000_000;
    pub const NODES: u128 = 13;

    pub fn http_request(request_size: u64, max_response: u64) -> u128 {
        (3_000_000 + 60_000 * NODES) * NODES
            + 400 * NODES * request_size as u128
            + 800 * NODES * max_response as u128
    }
}

fn p(v: i32) -> u64 {
    v as u32 as u64
}

macro_rules! wrap {
    ($linker:expr, $name:expr, $f:expr) => {
        $linker
            .func_wrap("ic0", $name, $f)
            .map_err(|e| crate::error::Error::Engine(e.to_string()))?;
    };
}

/// `ic0.<name>_size` and `ic0.<name>_copy` for a blob the message state
/// holds: `$bytes` computes it from `$m` (the message state) as a
/// `wasmtime::Result<Vec<u8>>` (`$name` is the function's name, for
/// errors); both functions are allowed in the same contexts.
macro_rules! blob {
    ($linker:expr, $blob:literal, $allowed:expr, |$m:ident, $name:ident| $bytes:expr) => {
        wrap!(
            $linker,
            concat!($blob, "_size"),
            |mut c: Ctx<'_>| -> wasmtime::Result<i32> {
                let $name = concat!($blob, "_size");
                let $m = enter(&mut c, $name, $allowed, 0)?;
                let bytes: wasmtime::Result<Vec<u8>> = $bytes;
                Ok(bytes?.len() as i32)
            }
        );
        wrap!($linker, concat!($blob, "_copy"), |mut c: Ctx<'_>,
                                                 dst: i32,
                                                 off: i32,
                                                 size: i32|
         -> wasmtime::Result<
            (),
        > {
            let $name = concat!($blob, "_copy");
            let $m = enter(&mut c, $name, $allowed, p(size))?;
            let bytes: wasmtime::Result<Vec<u8>> = $bytes;
            copy_out(&mut c, $name, &bytes?, p(dst), p(off), p(size))
        });
    };
}

/// Defines every `ic0` function in `linker`.
pub(crate) fn define(linker: &mut Linker<HostState>) -> Result<(), crate::error::Error> {
    // --- message arguments and caller -------------------------------------
    wrap!(
        linker,
        "msg_arg_data_size",
        |mut c: Ctx<'_>| -> wasmtime::Result<i32> {
            let m = enter(
                &mut c,
                "msg_arg_data_size",
                I | U | RQ | NRQ | CQ | RY | CRY | F,
                0,
            )?;
            Ok(m.arg.len() as i32)
        }
    );
    wrap!(
        linker,
        "msg_arg_data_copy",
        |mut c: Ctx<'_>, dst: i32, off: i32, size: i32| {
            let m = enter(
                &mut c,
                "msg_arg_data_copy",
                I | U | RQ | NRQ | CQ | RY | CRY | F,
                p(size),
            )?;
            let arg = std::mem::take(&mut m.arg);
            let r = copy_out(&mut c, "msg_arg_data_copy", &arg, p(dst), p(off), p(size));
            if let Some(m) = c.data_mut().msg.as_deref_mut() {
                m.arg = arg;
            }
            r
        }
    );
    blob!(linker, "msg_caller", STAR, |m, name| Ok(m
        .caller
        .as_slice()
        .to_vec()));
    // Caller info (signed attributes of the caller): none here.
    blob!(
        linker,
        "msg_caller_info_data",
        U | RQ | NRQ | CQ | RY | RT | CRY | CRT | C | CC | F,
        |_m, name| Ok(Vec::new())
    );
    blob!(
        linker,
        "msg_caller_info_signer",
        U | RQ | NRQ | CQ | RY | RT | CRY | CRT | C | CC | F,
        |_m, name| Ok(Vec::new())
    );
    wrap!(
        linker,
        "msg_reject_code",
        |mut c: Ctx<'_>| -> wasmtime::Result<i32> {
            let m = enter(&mut c, "msg_reject_code", RY | RT | CRY | CRT | C, 0)?;
            Ok(m.reject.as_ref().map(|r| r.0.as_u32() as i32).unwrap_or(0))
        }
    );
    blob!(linker, "msg_reject_msg", RT | CRT, |m, name| Ok(m
        .reject
        .as_ref()
        .map(|r| r.1.clone().into_bytes())
        .unwrap_or_default()));
    wrap!(
        linker,
        "msg_deadline",
        |mut c: Ctx<'_>| -> wasmtime::Result<i64> {
            let m = enter(
                &mut c,
                "msg_deadline",
                U | RQ | NRQ | CQ | RY | RT | CRY | CRT,
                0,
            )?;
            Ok(m.deadline as i64)
        }
    );

    // --- responding ----------------------------------------------------------
    const RESPOND: u32 = U | RQ | NRQ | CQ | RY | RT | CRY | CRT;
    wrap!(
        linker,
        "msg_reply_data_append",
        |mut c: Ctx<'_>, src: i32, size: i32| {
            let m = enter(&mut c, "msg_reply_data_append", RESPOND, p(size))?;
            if m.replied() {
                return violation("ic0.msg_reply_data_append: the call is already replied");
            }
            let limit = m.limits.max_response_bytes;
            let total = m.reply_buf.len() as u64 + p(size);
            if total > limit {
                return violation(format!(
                "ic0.msg_reply_data_append: application payload size ({total}) cannot be larger than {limit}"
            ));
            }
            let bytes = read_heap(&mut c, "msg_reply_data_append", p(src), p(size))?;
            if let Some(m) = c.data_mut().msg.as_deref_mut() {
                m.reply_buf.extend_from_slice(&bytes);
            }
            Ok(())
        }
    );
    wrap!(linker, "msg_reply", |mut c: Ctx<'_>| {
        let m = enter(&mut c, "msg_reply", RESPOND, 0)?;
        if m.replied() {
            return violation("ic0.msg_reply: the call is already replied");
        }
        let data = std::mem::take(&mut m.reply_buf);
        m.response = Some(Payload::Reply(data));
        Ok(())
    });
    wrap!(
        linker,
        "msg_reject",
        |mut c: Ctx<'_>, src: i32, size: i32| {
            let m = enter(&mut c, "msg_reject", RESPOND, p(size))?;
            if m.replied() {
                return violation("ic0.msg_reject: the call is already replied");
            }
            let limit = m.limits.max_response_bytes;
            if p(size) > limit {
                return violation(format!(
                    "ic0.msg_reject: reject message size ({}) cannot be larger than {limit}",
                    p(size)
                ));
            }
            let bytes = read_heap(&mut c, "msg_reject", p(src), p(size))?;
            let Ok(message) = String::from_utf8(bytes) else {
                return violation("ic0.msg_reject: the reject message is not valid UTF-8");
            };
            if let Some(m) = c.data_mut().msg.as_deref_mut() {
                m.response = Some(Payload::Reject {
                    code: RejectCode::CanisterReject,
                    message,
                });
            }
            Ok(())
        }
    );

    // --- cycles --------------------------------------------------------------
    wrap!(
        linker,
        "msg_cycles_available128",
        |mut c: Ctx<'_>, dst: i32| {
            let m = enter(&mut c, "msg_cycles_available128", U | RQ | RT | RY, 0)?;
            let v = m.cycles_available - m.cycles_accepted;
            write_heap(&mut c, "msg_cycles_available128", p(dst), &v.to_le_bytes())
        }
    );
    wrap!(
        linker,
        "msg_cycles_refunded128",
        |mut c: Ctx<'_>, dst: i32| {
            let m = enter(&mut c, "msg_cycles_refunded128", RT | RY, 0)?;
            let v = m.cycles_refunded;
            write_heap(&mut c, "msg_cycles_refunded128", p(dst), &v.to_le_bytes())
        }
    );
    wrap!(
        linker,
        "msg_cycles_accept128",
        |mut c: Ctx<'_>, hi: i64, lo: i64, dst: i32| {
            let m = enter(&mut c, "msg_cycles_accept128", U | RQ | RT | RY, 0)?;
            let amount = u128_of(hi, lo).min(m.cycles_available - m.cycles_accepted);
            m.cycles_accepted += amount;
            m.balance = m.balance.saturating_add(amount);
            write_heap(
                &mut c,
                "msg_cycles_accept128",
                p(dst),
                &amount.to_le_bytes(),
            )
        }
    );
    wrap!(
        linker,
        "cycles_burn128",
        |mut c: Ctx<'_>, hi: i64, lo: i64, dst: i32| {
            let m = enter(
                &mut c,
                "cycles_burn128",
                I | G | U | RQ | RY | RT | C | T,
                0,
            )?;
            // At most the liquid balance: the freezing threshold stays.
            let amount = u128_of(hi, lo).min(m.liquid_balance());
            m.balance -= amount;
            write_heap(&mut c, "cycles_burn128", p(dst), &amount.to_le_bytes())
        }
    );
    wrap!(
        linker,
        "canister_cycle_balance128",
        |mut c: Ctx<'_>, dst: i32| {
            let m = enter(&mut c, "canister_cycle_balance128", STAR, 0)?;
            let v = m.balance;
            write_heap(
                &mut c,
                "canister_cycle_balance128",
                p(dst),
                &v.to_le_bytes(),
            )
        }
    );
    wrap!(
        linker,
        "canister_liquid_cycle_balance128",
        |mut c: Ctx<'_>, dst: i32| {
            let m = enter(&mut c, "canister_liquid_cycle_balance128", STAR, 0)?;
            let v = m.liquid_balance();
            write_heap(
                &mut c,
                "canister_liquid_cycle_balance128",
                p(dst),
                &v.to_le_bytes(),
            )
        }
    );

    // --- 64-bit cycle functions (32-bit memories only) -----------------
    wrap!(
        linker,
        "msg_cycles_available",
        |mut c: Ctx<'_>| -> wasmtime::Result<i64> {
            let m = enter(&mut c, "msg_cycles_available", U | RQ | RT | RY, 0)?;
            fits_u64(
                "msg_cycles_available",
                m.cycles_available - m.cycles_accepted,
            )
        }
    );
    wrap!(
        linker,
        "msg_cycles_refunded",
        |mut c: Ctx<'_>| -> wasmtime::Result<i64> {
            let m = enter(&mut c, "msg_cycles_refunded", RT | RY, 0)?;
            fits_u64("msg_cycles_refunded", m.cycles_refunded)
        }
    );
    wrap!(linker, "msg_cycles_accept", |mut c: Ctx<'_>,
                                        max: i64|
     -> wasmtime::Result<i64> {
        let m = enter(&mut c, "msg_cycles_accept", U | RQ | RT | RY, 0)?;
        let amount = u128::from(max as u64).min(m.cycles_available - m.cycles_accepted);
        m.cycles_accepted += amount;
        m.balance = m.balance.saturating_add(amount);
        Ok(amount as u64 as i64)
    });
    wrap!(
        linker,
        "canister_cycle_balance",
        |mut c: Ctx<'_>| -> wasmtime::Result<i64> {
            let m = enter(&mut c, "canister_cycle_balance", STAR, 0)?;
            fits_u64("canister_cycle_balance", m.balance)
        }
    );
    wrap!(linker, "call_cycles_add", |mut c: Ctx<'_>, amount: i64| {
        let m = enter(&mut c, "call_cycles_add", U | RY | RT | T, 0)?;
        let amount = u128::from(amount as u64);
        let balance = m.liquid_balance();
        let Some(call) = m.pending_call.as_mut() else {
            return violation(
                "ic0.call_cycles_add: no call is under construction (call ic0.call_new first)",
            );
        };
        if amount > balance {
            return trap(
                ErrorCode::InsufficientCyclesInCall,
                format!("ic0.call_cycles_add: cannot transfer {amount} cycles; the balance is {balance} cycles"),
            );
        }
        call.cycles += amount;
        m.balance -= amount;
        Ok(())
    });

    // --- canister and subnet ---------------------------------------------
    blob!(linker, "canister_self", STAR, |m, name| Ok(m
        .canister_id
        .as_slice()
        .to_vec()));
    wrap!(
        linker,
        "canister_status",
        |mut c: Ctx<'_>| -> wasmtime::Result<i32> {
            let m = enter(&mut c, "canister_status", STAR, 0)?;
            Ok(m.status_code as i32)
        }
    );
    wrap!(
        linker,
        "canister_version",
        |mut c: Ctx<'_>| -> wasmtime::Result<i64> {
            let m = enter(&mut c, "canister_version", STAR, 0)?;
            Ok(m.version as i64)
        }
    );
    blob!(linker, "subnet_self", STAR, |m, name| Ok(m
        .subnet_id
        .as_slice()
        .to_vec()));
    wrap!(
        linker,
        "subnet_self_node_count",
        |mut c: Ctx<'_>| -> wasmtime::Result<i32> {
            enter(&mut c, "subnet_self_node_count", STAR, 0)?;
            Ok(1)
        }
    );
    blob!(linker, "msg_method_name", F, |m, name| Ok(m
        .method_name
        .clone()
        .into_bytes()));
    wrap!(linker, "accept_message", |mut c: Ctx<'_>| {
        let m = enter(&mut c, "accept_message", F, 0)?;
        if m.accepted_message {
            return violation("ic0.accept_message: the message was already accepted");
        }
        m.accepted_message = true;
        Ok(())
    });

    // --- inter-canister calls ------------------------------------------------
    const CALLS: u32 = U | CQ | RY | RT | CRY | CRT | T;
    wrap!(
        linker,
        "call_new",
        |mut c: Ctx<'_>,
         callee_src: i32,
         callee_size: i32,
         name_src: i32,
         name_size: i32,
         reply_fun: i32,
         reply_env: i32,
         reject_fun: i32,
         reject_env: i32| {
            enter(&mut c, "call_new", CALLS, p(callee_size) + p(name_size))?;
            let callee = read_heap(&mut c, "call_new", p(callee_src), p(callee_size))?;
            let name = read_heap(&mut c, "call_new", p(name_src), p(name_size))?;
            let Ok(method) = String::from_utf8(name) else {
                return violation("ic0.call_new: the method name is not valid UTF-8");
            };
            let Some(m) = c.data_mut().msg.as_deref_mut() else {
                return violation("ic0.call_new called outside of a message");
            };
            // A call under construction is discarded; its cycles come back.
            if let Some(old) = m.pending_call.take() {
                m.balance = m.balance.saturating_add(old.cycles);
            }
            m.pending_call = Some(PendingCall {
                callee,
                method,
                arg: Vec::new(),
                cycles: 0,
                on_reply: (reply_fun as u32, reply_env as u32),
                on_reject: (reject_fun as u32, reject_env as u32),
                on_cleanup: None,
                timeout_secs: None,
                prepaid_callback: 0,
                prepaid_response: 0,
            });
            Ok(())
        }
    );
    wrap!(
        linker,
        "call_on_cleanup",
        |mut c: Ctx<'_>, fun: i32, env: i32| {
            let m = enter(&mut c, "call_on_cleanup", CALLS, 0)?;
            let Some(call) = m.pending_call.as_mut() else {
                return violation(
                    "ic0.call_on_cleanup: no call is under construction (call ic0.call_new first)",
                );
            };
            if call.on_cleanup.is_some() {
                return violation("ic0.call_on_cleanup: the cleanup callback is already set");
            }
            call.on_cleanup = Some((fun as u32, env as u32));
            Ok(())
        }
    );
    wrap!(
        linker,
        "call_data_append",
        |mut c: Ctx<'_>, src: i32, size: i32| {
            let m = enter(&mut c, "call_data_append", CALLS, p(size))?;
            let limit = m.limits.max_inter_canister_bytes;
            let Some(call) = m.pending_call.as_ref() else {
                return violation(
                    "ic0.call_data_append: no call is under construction (call ic0.call_new first)",
                );
            };
            let total = call.arg.len() as u64 + p(size);
            if total > limit {
                return violation(format!(
                "ic0.call_data_append: the request payload ({total} bytes) exceeds the inter-canister limit of {limit} bytes"
            ));
            }
            let bytes = read_heap(&mut c, "call_data_append", p(src), p(size))?;
            if let Some(call) = c
                .data_mut()
                .msg
                .as_deref_mut()
                .and_then(|m| m.pending_call.as_mut())
            {
                call.arg.extend_from_slice(&bytes);
            }
            Ok(())
        }
    );
    wrap!(
        linker,
        "call_with_best_effort_response",
        |mut c: Ctx<'_>, timeout: i32| {
            let m = enter(&mut c, "call_with_best_effort_response", CALLS, 0)?;
            let max = m.limits.max_bounded_wait_secs;
            let Some(call) = m.pending_call.as_mut() else {
                return violation(
                "ic0.call_with_best_effort_response: no call is under construction (call ic0.call_new first)",
            );
            };
            if call.timeout_secs.is_some() {
                return violation("ic0.call_with_best_effort_response: the timeout is already set");
            }
            call.timeout_secs = Some((timeout as u32).min(max));
            Ok(())
        }
    );
    wrap!(
        linker,
        "call_cycles_add128",
        |mut c: Ctx<'_>, hi: i64, lo: i64| {
            let m = enter(&mut c, "call_cycles_add128", U | RY | RT | T, 0)?;
            let amount = u128_of(hi, lo);
            let balance = m.liquid_balance();
            let Some(call) = m.pending_call.as_mut() else {
                return violation("ic0.call_cycles_add128: no call is under construction (call ic0.call_new first)");
            };
            if amount > balance {
                return trap(
                ErrorCode::InsufficientCyclesInCall,
                format!(
                    "ic0.call_cycles_add128: cannot transfer {amount} cycles; the balance is {balance} cycles"
                ),
            );
            }
            call.cycles += amount;
            m.balance -= amount;
            Ok(())
        }
    );
    wrap!(
        linker,
        "call_perform",
        |mut c: Ctx<'_>| -> wasmtime::Result<i32> {
            let m = enter(&mut c, "call_perform", CALLS, 0)?;
            let Some(mut call) = m.pending_call.take() else {
                return violation(
                    "ic0.call_perform: no call is under construction (call ic0.call_new first)",
                );
            };
            if let Some(ctx) = m.cycles.as_ref() {
                // The request, the callback's execution and the largest
                // response are paid now; the unused part comes back with
                // the response.
                let request = (call.arg.len() + call.method.len()) as u64;
                let fee = ctx.fees.xnet_call_cost(request);
                let response = ctx.fees.xnet_bytes_cost(ctx.max_response_bytes);
                let cost = fee
                    .saturating_add(ctx.callback_prepay)
                    .saturating_add(response);
                if ctx.shortfall(m.balance, cost).is_some() {
                    // Not enqueued: the cycles put on the call come back.
                    m.balance = m.balance.saturating_add(call.cycles);
                    return Ok(RejectCode::SysTransient.as_u32() as i32);
                }
                m.balance -= cost;
                call.prepaid_callback = ctx.callback_prepay;
                call.prepaid_response = response;
            }
            m.calls.push(call);
            Ok(0)
        }
    );

    // --- stable memory ---------------------------------------------------
    wrap!(
        linker,
        "stable64_size",
        |mut c: Ctx<'_>| -> wasmtime::Result<i64> {
            let m = enter(&mut c, "stable64_size", ALL, 0)?;
            Ok(m.stable.pages() as i64)
        }
    );
    wrap!(linker, "stable64_grow", |mut c: Ctx<'_>,
                                    pages: i64|
     -> wasmtime::Result<i64> {
        let m = enter(&mut c, "stable64_grow", ALL, 0)?;
        let max = m.limits.max_stable_pages;
        grow_stable(m, pages as u64, max)
    });
    wrap!(
        linker,
        "stable64_write",
        |mut c: Ctx<'_>, off: i64, src: i64, size: i64| {
            stable_write(
                &mut c,
                "stable64_write",
                off as u64,
                src as u64,
                size as u64,
            )
        }
    );
    wrap!(
        linker,
        "stable64_read",
        |mut c: Ctx<'_>, dst: i64, off: i64, size: i64| {
            stable_read(&mut c, "stable64_read", dst as u64, off as u64, size as u64)
        }
    );
    wrap!(
        linker,
        "stable_size",
        |mut c: Ctx<'_>| -> wasmtime::Result<i32> {
            let m = enter(&mut c, "stable_size", ALL, 0)?;
            let pages = m.stable.pages();
            if pages > 65536 {
                return violation(format!(
                "ic0.stable_size: stable memory has {pages} pages, more than the 32-bit API can address; use ic0.stable64_size"
            ));
            }
            Ok(pages as i32)
        }
    );
    wrap!(linker, "stable_grow", |mut c: Ctx<'_>,
                                  pages: i32|
     -> wasmtime::Result<i32> {
        let m = enter(&mut c, "stable_grow", ALL, 0)?;
        let max = m.limits.max_stable_pages.min(65536);
        if m.stable.pages() > 65536 {
            return violation(
                "ic0.stable_grow: stable memory is larger than the 32-bit API can address",
            );
        }
        Ok(grow_stable(m, p(pages), max)? as i32)
    });
    wrap!(
        linker,
        "stable_write",
        |mut c: Ctx<'_>, off: i32, src: i32, size: i32| {
            check_stable32(&c, "stable_write")?;
            stable_write(&mut c, "stable_write", p(off), p(src), p(size))
        }
    );
    wrap!(
        linker,
        "stable_read",
        |mut c: Ctx<'_>, dst: i32, off: i32, size: i32| {
            check_stable32(&c, "stable_read")?;
            stable_read(&mut c, "stable_read", p(dst), p(off), p(size))
        }
    );

    // --- certified data, root key, time ------------------------------------
    blob!(
        linker,
        "root_key",
        I | G | U | RQ | RY | RT | C | T,
        |m, name| Ok(m.root_key.to_vec())
    );
    wrap!(
        linker,
        "certified_data_set",
        |mut c: Ctx<'_>, src: i32, size: i32| {
            enter(
                &mut c,
                "certified_data_set",
                I | G | U | RY | RT | T,
                p(size),
            )?;
            if p(size) > 32 {
                return violation(format!(
                "ic0.certified_data_set: certified data is {} bytes; at most 32 bytes are allowed",
                p(size)
            ));
            }
            let bytes = read_heap(&mut c, "certified_data_set", p(src), p(size))?;
            if let Some(m) = c.data_mut().msg.as_deref_mut() {
                m.certified_data = bytes;
                m.certified_data_changed = true;
            }
            Ok(())
        }
    );
    wrap!(
        linker,
        "data_certificate_present",
        |mut c: Ctx<'_>| -> wasmtime::Result<i32> {
            let m = enter(&mut c, "data_certificate_present", STAR, 0)?;
            Ok(i32::from(m.data_certificate.is_some()))
        }
    );
    blob!(linker, "data_certificate", NRQ | CQ, |m, name| {
        match &m.data_certificate {
            Some(cert) => Ok(cert.to_vec()),
            None => violation(format!("ic0.{name}: no data certificate is present (only non-replicated queries answered with a certificate get one)")),
        }
    });
    wrap!(linker, "time", |mut c: Ctx<'_>| -> wasmtime::Result<i64> {
        let m = enter(&mut c, "time", STAR, 0)?;
        Ok(m.time as i64)
    });
    wrap!(linker, "global_timer_set", |mut c: Ctx<'_>,
                                       ts: i64|
     -> wasmtime::Result<i64> {
        let m = enter(&mut c, "global_timer_set", I | G | U | RY | RT | C | T, 0)?;
        let old = m.global_timer;
        m.global_timer = ts as u64;
        Ok(old as i64)
    });
    wrap!(
        linker,
        "performance_counter",
        |mut c: Ctx<'_>, kind: i32| -> wasmtime::Result<i64> {
            enter(&mut c, "performance_counter", ALL, 0)?;
            let now = instructions_so_far(&c);
            let before = c
                .data()
                .msg
                .as_ref()
                .map(|m| m.context_instructions)
                .unwrap_or(0);
            match kind {
                0 => Ok(now as i64),
                1 => Ok(before.saturating_add(now) as i64),
                other => violation(format!(
                    "ic0.performance_counter: expected counter type 0 or 1, found {other}"
                )),
            }
        }
    );
    wrap!(linker, "is_controller", |mut c: Ctx<'_>,
                                    src: i32,
                                    size: i32|
     -> wasmtime::Result<i32> {
        enter(&mut c, "is_controller", ALL, p(size))?;
        let bytes = read_heap(&mut c, "is_controller", p(src), p(size))?;
        let Ok(principal) = Principal::try_from_slice(&bytes) else {
            return violation(format!(
                "ic0.is_controller: expected a principal (at most 29 bytes), found {} bytes",
                bytes.len()
            ));
        };
        let m = c.data().msg.as_deref();
        Ok(m.map(|m| m.controllers.contains(&principal))
            .unwrap_or(false) as i32)
    });
    wrap!(
        linker,
        "in_replicated_execution",
        |mut c: Ctx<'_>| -> wasmtime::Result<i32> {
            let m = enter(&mut c, "in_replicated_execution", ALL, 0)?;
            Ok(m.api.replicated() as i32)
        }
    );

    // --- cost functions ------------------------------------------------------
    wrap!(
        linker,
        "cost_call",
        |mut c: Ctx<'_>, name: i64, payload: i64, dst: i32| {
            enter(&mut c, "cost_call", ALL, 0)?;
            let cost =
                fees::XNET_CALL + fees::XNET_BYTE * (name as u64 as u128 + payload as u64 as u128);
            write_heap(&mut c, "cost_call", p(dst), &cost.to_le_bytes())
        }
    );
    wrap!(
        linker,
        "cost_create_canister",
        |mut c: Ctx<'_>, dst: i32| {
            enter(&mut c, "cost_create_canister", ALL, 0)?;
            write_heap(
                &mut c,
                "cost_create_canister",
                p(dst),
                &fees::CREATE_CANISTER.to_le_bytes(),
            )
        }
    );
    wrap!(
        linker,
        "cost_http_request",
        |mut c: Ctx<'_>, req: i64, res: i64, dst: i32| {
            enter(&mut c, "cost_http_request", ALL, 0)?;
            let cost = fees::http_request(req as u64, res as u64);
            write_heap(&mut c, "cost_http_request", p(dst), &cost.to_le_bytes())
        }
    );
    wrap!(
        linker,
        "cost_http_request_v2",
        |mut c: Ctx<'_>, _src: i32, size: i32, dst: i32| {
            enter(&mut c, "cost_http_request_v2", ALL, 0)?;
            let cost = fees::http_request(p(size), 2 * 1024 * 1024);
            write_heap(&mut c, "cost_http_request_v2", p(dst), &cost.to_le_bytes())
        }
    );
    // No threshold keys exist here: every key name is unknown (error 2).
    wrap!(linker, "cost_sign_with_ecdsa", |mut c: Ctx<'_>,
                                           _s: i32,
                                           _n: i32,
                                           _k: i32,
                                           _d: i32|
     -> wasmtime::Result<
        i32,
    > {
        enter(&mut c, "cost_sign_with_ecdsa", ALL, 0)?;
        Ok(2)
    });
    wrap!(linker, "cost_sign_with_schnorr", |mut c: Ctx<'_>,
                                             _s: i32,
                                             _n: i32,
                                             _k: i32,
                                             _d: i32|
     -> wasmtime::Result<
        i32,
    > {
        enter(&mut c, "cost_sign_with_schnorr", ALL, 0)?;
        Ok(2)
    });
    wrap!(linker, "cost_vetkd_derive_key", |mut c: Ctx<'_>,
                                            _s: i32,
                                            _n: i32,
                                            _k: i32,
                                            _d: i32|
     -> wasmtime::Result<
        i32,
    > {
        enter(&mut c, "cost_vetkd_derive_key", ALL, 0)?;
        Ok(2)
    });

    // --- environment variables (the canister's settings) -----------------
    wrap!(
        linker,
        "env_var_count",
        |mut c: Ctx<'_>| -> wasmtime::Result<i32> {
            let m = enter(&mut c, "env_var_count", STAR, 0)?;
            Ok(m.env_vars.len() as i32)
        }
    );
    wrap!(linker, "env_var_name_size", |mut c: Ctx<'_>,
                                        index: i32|
     -> wasmtime::Result<i32> {
        let m = enter(&mut c, "env_var_name_size", STAR, 0)?;
        Ok(env_var_at(m, p(index))?.0.len() as i32)
    });
    wrap!(linker, "env_var_name_copy", |mut c: Ctx<'_>,
                                        index: i32,
                                        dst: i32,
                                        off: i32,
                                        size: i32|
     -> wasmtime::Result<()> {
        let m = enter(&mut c, "env_var_name_copy", STAR, p(size))?;
        let name = env_var_at(m, p(index))?.0.clone();
        copy_out(
            &mut c,
            "env_var_name_copy",
            name.as_bytes(),
            p(dst),
            p(off),
            p(size),
        )
    });
    wrap!(
        linker,
        "env_var_name_exists",
        |mut c: Ctx<'_>, src: i32, size: i32| -> wasmtime::Result<i32> {
            enter(&mut c, "env_var_name_exists", STAR, p(size))?;
            let name = env_var_name(&mut c, "env_var_name_exists", p(src), p(size))?;
            let m = c.data().msg.as_deref();
            Ok(m.is_some_and(|m| m.env_vars.contains_key(&name)) as i32)
        }
    );
    wrap!(linker, "env_var_value_size", |mut c: Ctx<'_>,
                                         src: i32,
                                         size: i32|
     -> wasmtime::Result<i32> {
        enter(&mut c, "env_var_value_size", STAR, p(size))?;
        let name = env_var_name(&mut c, "env_var_value_size", p(src), p(size))?;
        Ok(env_var_value(&c, &name)?.len() as i32)
    });
    wrap!(linker, "env_var_value_copy", |mut c: Ctx<'_>,
                                         src: i32,
                                         size: i32,
                                         dst: i32,
                                         off: i32,
                                         len: i32|
     -> wasmtime::Result<()> {
        enter(&mut c, "env_var_value_copy", STAR, p(size) + p(len))?;
        let name = env_var_name(&mut c, "env_var_value_copy", p(src), p(size))?;
        let value = env_var_value(&c, &name)?;
        copy_out(
            &mut c,
            "env_var_value_copy",
            value.as_bytes(),
            p(dst),
            p(off),
            p(len),
        )
    });

    // --- debugging -----------------------------------------------------------
    wrap!(
        linker,
        "debug_print",
        |mut c: Ctx<'_>, src: i32, size: i32| {
            enter(&mut c, "debug_print", ALL, p(size))?;
            let bytes = read_heap(&mut c, "debug_print", p(src), p(size))?;
            if let Some(m) = c.data_mut().msg.as_deref_mut() {
                m.logs.push(String::from_utf8_lossy(&bytes).into_owned());
            }
            Ok(())
        }
    );
    wrap!(linker, "trap", |mut c: Ctx<'_>,
                           src: i32,
                           size: i32|
     -> wasmtime::Result<()> {
        enter(&mut c, "trap", ALL, p(size))?;
        let bytes = read_heap(&mut c, "trap", p(src), p(size))?;
        trap(
            ErrorCode::CanisterCalledTrap,
            format!(
                "Canister called `ic0.trap` with message: '{}'",
                String::from_utf8_lossy(&bytes)
            ),
        )
    });
    Ok(())
}

/// The environment variable at `index` (in name order), or the IC's trap.
fn env_var_at(m: &MessageState, index: u64) -> wasmtime::Result<(&String, &String)> {
    match m.env_vars.iter().nth(index as usize) {
        Some(entry) => Ok(entry),
        None => violation(format!(
            "Environment variable index {index} is out of bounds. The number of environment \
             variables is {}.",
            m.env_vars.len()
        )),
    }
}

/// A variable name read from the heap (at most 128 bytes of UTF-8).
fn env_var_name(c: &mut Ctx<'_>, call: &str, src: u64, size: u64) -> wasmtime::Result<String> {
    if size > crate::management::MAX_ENV_VAR_NAME_BYTES as u64 {
        return violation(format!(
            "ic0.{call}: the variable name is {size} bytes; at most {} are allowed",
            crate::management::MAX_ENV_VAR_NAME_BYTES
        ));
    }
    let bytes = read_heap(c, call, src, size)?;
    String::from_utf8(bytes)
        .or_else(|_| violation(format!("ic0.{call}: the variable name is not valid UTF-8")))
}

/// The value of the variable `name`, or the IC's trap.
fn env_var_value(c: &Ctx<'_>, name: &str) -> wasmtime::Result<String> {
    match c.data().msg.as_deref().and_then(|m| m.env_vars.get(name)) {
        Some(v) => Ok(v.clone()),
        None => violation(format!("Environment variable {name} not found.")),
    }
}

/// Grows stable memory by `pages` up to `max` pages: the old size, or -1
/// if the memory cannot grow; traps if the canister cannot pay for the
/// memory (as the IC).
fn grow_stable(m: &mut MessageState, pages: u64, max: u64) -> wasmtime::Result<i64> {
    let fits = m
        .stable
        .pages()
        .checked_add(pages)
        .is_some_and(|n| n <= max);
    if fits && pages > 0 {
        m.grow_memory(pages.saturating_mul(WASM_PAGE))?;
    }
    Ok(m.stable.grow(pages, max))
}

/// The 32-bit stable memory API traps once stable memory exceeds 4 GiB.
fn check_stable32(c: &Ctx<'_>, name: &str) -> wasmtime::Result<()> {
    let pages = c.data().msg.as_ref().map(|m| m.stable.pages()).unwrap_or(0);
    if pages > 65536 {
        return violation(format!(
            "ic0.{name}: stable memory has {pages} pages, more than the 32-bit API can address; use ic0.stable64_*"
        ));
    }
    Ok(())
}

fn stable_write(
    c: &mut Ctx<'_>,
    name: &str,
    off: u64,
    src: u64,
    size: u64,
) -> wasmtime::Result<()> {
    enter(c, name, ALL, size)?;
    let bytes = read_heap(c, name, src, size)?;
    let Some(m) = c.data_mut().msg.as_deref_mut() else {
        return violation(format!("\"ic0.{name}\" called outside of a message"));
    };
    let len = m.stable.bytes().len() as u64;
    if off.checked_add(size).is_none_or(|end| end > len) {
        return trap(
            ErrorCode::CanisterTrapped,
            format!(
                "Canister trapped: stable memory out of bounds: ic0.{name} wrote [{off}, {}) of {len} bytes",
                off as u128 + size as u128
            ),
        );
    }
    let limits = m.stable_page_limits();
    let dirtied = match m.stable_pages.touch(off, size, true, limits) {
        Ok(n) => n,
        Err(which) => return Err(wasmtime::Error::new(m.stable_limit_error(which))),
    };
    m.stable.write(off, &bytes);
    charge(c, dirtied.saturating_mul(costs::DIRTY_PAGE_OVERHEAD))
}

fn stable_read(c: &mut Ctx<'_>, name: &str, dst: u64, off: u64, size: u64) -> wasmtime::Result<()> {
    let m = enter(c, name, ALL, size)?;
    let len = m.stable.bytes().len();
    let limits = m.stable_page_limits();
    let Some(bytes) = m.stable.read(off, size).map(<[u8]>::to_vec) else {
        return trap(
            ErrorCode::CanisterTrapped,
            format!(
                "Canister trapped: stable memory out of bounds: ic0.{name} read [{off}, {}) of {len} bytes",
                off as u128 + size as u128
            ),
        );
    };
    if let Err(which) = m.stable_pages.touch(off, size, false, limits) {
        return Err(wasmtime::Error::new(m.stable_limit_error(which)));
    }
    write_heap(c, name, dst, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_memory_rolls_back_writes_and_growth() {
        let mut s = StableMemory::default();
        assert_eq!(s.grow(1, 10), 0);
        s.begin();
        assert!(s.write(10, b"hello"));
        s.commit();
        s.begin();
        assert!(s.write(10, b"world"));
        assert_eq!(s.grow(2, 10), 1);
        assert!(s.write(WASM_PAGE + 5, b"x"));
        s.rollback();
        assert_eq!(s.pages(), 1);
        assert_eq!(&s.bytes()[10..15], b"hello");
        assert_eq!(s.grow(20, 10), -1);
        assert!(!s.write(WASM_PAGE - 2, b"abc"));
    }

    #[test]
    fn every_signature_is_defined_with_its_type() {
        let engine = wasmtime::Engine::default();
        let mut linker = Linker::new(&engine);
        define(&mut linker).unwrap();
        let mut store = wasmtime::Store::new(
            &engine,
            HostState {
                msg: None,
                memory: None,
                max_heap_bytes: 0,
                wasm_memory_limit: 0,
            },
        );
        for name in ic0_functions() {
            let func = linker
                .get(&mut store, "ic0", name)
                .ok()
                .and_then(|e| e.into_func())
                .unwrap_or_else(|| panic!("ic0.{name} is not defined"));
            let ty = func.ty(&store);
            let (params, results) = ic0_wasmtime_signature(name).unwrap();
            let found_p: Vec<String> = ty.params().map(|t| t.to_string()).collect();
            let found_r: Vec<String> = ty.results().map(|t| t.to_string()).collect();
            let want_p: Vec<String> = params.iter().map(|t| t.to_string()).collect();
            let want_r: Vec<String> = results.iter().map(|t| t.to_string()).collect();
            assert_eq!((found_p, found_r), (want_p, want_r), "ic0.{name}");
        }
    }
}
