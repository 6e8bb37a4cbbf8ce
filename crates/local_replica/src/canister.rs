//! Per-canister state and the execution of one message in a canister's
//! wasm instance, with commit or rollback.
//!
//! Each installed canister has its own wasmtime store and instance, so its
//! heap, globals and table are its own. The committed state is a copy of
//! the heap and of the mutable globals taken after every successful
//! message. Commit and rollback compare the live heap with that copy in
//! 4 KiB pages and copy only the pages that differ, so a message that
//! touches little costs a memory comparison, not a full copy (the cost is
//! still proportional to the heap size: about a memcmp of the heap per
//! message). A message that grew the heap and then trapped is rolled back
//! by re-instantiating the module and restoring the committed copy, since
//! a wasm memory cannot shrink. Stable memory keeps an undo journal of the
//! pages a message wrote ([`StableMemory`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use candid::Principal;
use wasmtime::{Engine, Global, Instance, Linker, Memory, Module, Ref, Store, Table, Trap, Val};

use crate::checkpoint::DirtyPages;
use crate::error::ErrorCode;
use crate::system_api::{HostState, HostTrap, MessageState, StableMemory};
use crate::validation::{ModuleInfo, GLOBAL_EXPORT_PREFIX, MEMORY_EXPORT, TABLE_EXPORT};

/// Running / stopping / stopped (the codes of `ic0.canister_status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CanisterStatus {
    Running,
    Stopping,
    Stopped,
}

impl CanisterStatus {
    pub(crate) fn code(self) -> u32 {
        match self {
            CanisterStatus::Running => 1,
            CanisterStatus::Stopping => 2,
            CanisterStatus::Stopped => 3,
        }
    }
}

/// A compiled, validated module.
#[derive(Clone)]
pub(crate) struct CompiledModule {
    pub module: Module,
    pub info: Arc<ModuleInfo>,
    /// SHA-256 of the module as installed (before instrumentation).
    pub hash: [u8; 32],
    /// The module as installed (kept for checkpoints).
    pub wasm: Arc<Vec<u8>>,
    /// Size of the (decompressed) module: part of the canister's memory.
    pub size: u64,
    /// What compiling it costs on the IC, in instructions.
    pub compilation_cost: u64,
}

/// What to call in the instance.
#[derive(Debug, Clone)]
pub(crate) enum Entry {
    /// An exported function, e.g. `canister_update inc`.
    Export(String),
    /// A function of the table with an `env` argument (call callbacks).
    Table { fun: u32, env: u32 },
}

/// The result of one execution.
pub(crate) struct Execution {
    /// `Err((code, message))` when the message trapped.
    pub result: Result<(), (ErrorCode, String)>,
    pub instructions: u64,
    pub msg: MessageState,
}

/// A live instance of a canister's module and its committed state.
pub(crate) struct Wasm {
    pub compiled: CompiledModule,
    store: Store<HostState>,
    instance: Instance,
    memory: Option<Memory>,
    table: Option<Table>,
    globals: Vec<Global>,
    committed_heap: Vec<u8>,
    committed_globals: Vec<Val>,
    /// Pages of the committed heap changed since the last checkpoint.
    heap_dirty: DirtyPages,
}

const PAGE: usize = 4096;

/// Copies into `dst` the pages of `src` that differ, marking them in
/// `dirty`; `dst` takes `src`'s length (it may only grow).
fn sync_pages(src: &[u8], dst: &mut Vec<u8>, dirty: &mut DirtyPages) {
    let common = dst.len().min(src.len());
    let mut start = 0;
    while start < common {
        let end = (start + PAGE).min(common);
        if src[start..end] != dst[start..end] {
            dst[start..end].copy_from_slice(&src[start..end]);
            dirty.mark(start, end);
        }
        start = end;
    }
    if src.len() > dst.len() {
        dst.extend_from_slice(&src[common..]);
        dirty.mark(common, src.len());
    }
}

fn classify(error: wasmtime::Error, fuel_limit: u64) -> (ErrorCode, String) {
    if let Some(t) = error.downcast_ref::<HostTrap>() {
        return (t.code, t.message.clone());
    }
    if let Some(trap) = error.downcast_ref::<Trap>() {
        return match trap {
            Trap::OutOfFuel => (
                ErrorCode::CanisterInstructionLimitExceeded,
                format!(
                    "Canister exceeded the limit of {fuel_limit} instructions for single message execution."
                ),
            ),
            Trap::MemoryOutOfBounds => (
                ErrorCode::CanisterTrapped,
                "Canister trapped: heap out of bounds".to_string(),
            ),
            Trap::UnreachableCodeReached => (
                ErrorCode::CanisterTrapped,
                "Canister trapped: unreachable".to_string(),
            ),
            Trap::StackOverflow => (
                ErrorCode::CanisterTrapped,
                "Canister trapped: stack overflow".to_string(),
            ),
            other => (ErrorCode::CanisterTrapped, format!("Canister trapped: {other}")),
        };
    }
    (
        ErrorCode::CanisterTrapped,
        format!("Canister trapped: {error}"),
    )
}

impl Wasm {
    /// Instantiates `compiled` (running its start function, if any, under
    /// `msg`); the new instance's state is committed.
    pub fn instantiate(
        engine: &Engine,
        linker: &Linker<HostState>,
        compiled: &CompiledModule,
        max_heap_bytes: usize,
        msg: MessageState,
    ) -> (Result<Wasm, (ErrorCode, String)>, MessageState, u64) {
        let mut store = Store::new(
            engine,
            HostState {
                msg: Some(Box::new(msg)),
                memory: None,
                max_heap_bytes,
                wasm_memory_limit: 0,
            },
        );
        store.limiter(|s| s);
        let fuel = store.data().msg.as_ref().map(|m| m.fuel_limit).unwrap_or(0);
        if let Err(e) = store.set_fuel(fuel) {
            let msg = take_msg(&mut store);
            return (Err((ErrorCode::CanisterInvalidWasm, e.to_string())), msg, 0);
        }
        let instance = linker.instantiate(&mut store, &compiled.module);
        let instructions = fuel.saturating_sub(store.get_fuel().unwrap_or(0));
        let instance = match instance {
            Ok(i) => i,
            Err(e) => {
                let msg = take_msg(&mut store);
                return (Err(classify(e, fuel)), msg, instructions);
            }
        };
        let memory = instance.get_memory(&mut store, MEMORY_EXPORT);
        let table = instance.get_table(&mut store, TABLE_EXPORT);
        let globals: Vec<Global> = compiled
            .info
            .mutable_globals
            .iter()
            .filter_map(|g| instance.get_global(&mut store, &format!("{GLOBAL_EXPORT_PREFIX}{g}")))
            .collect();
        store.data_mut().memory = memory;
        let msg = take_msg(&mut store);
        let mut wasm = Wasm {
            compiled: compiled.clone(),
            store,
            instance,
            memory,
            table,
            globals,
            committed_heap: Vec::new(),
            committed_globals: Vec::new(),
            heap_dirty: DirtyPages::default(),
        };
        wasm.commit();
        (Ok(wasm), msg, instructions)
    }

    /// The most the heap may grow to in the next execution (`memory.grow`
    /// fails beyond `hard`) and the canister's `wasm_memory_limit` (growing
    /// beyond it traps; 0: none).
    pub fn set_memory_limits(&mut self, hard: usize, wasm_memory_limit: u64) {
        let data = self.store.data_mut();
        data.max_heap_bytes = hard;
        data.wasm_memory_limit = wasm_memory_limit;
    }

    /// Heap size in bytes.
    pub fn heap_bytes(&self) -> usize {
        self.memory.map(|m| m.data_size(&self.store)).unwrap_or(0)
    }

    /// Runs `entry` with `msg` (whose `fuel_limit` is the instruction
    /// limit). The caller decides to commit or roll back.
    pub fn run(&mut self, entry: &Entry, msg: MessageState) -> Execution {
        let fuel = msg.fuel_limit;
        self.store.data_mut().msg = Some(Box::new(msg));
        let result = match self.store.set_fuel(fuel) {
            Ok(()) => self.call(entry),
            Err(e) => Err(e),
        };
        let instructions = fuel.saturating_sub(self.store.get_fuel().unwrap_or(0));
        let msg = take_msg(&mut self.store);
        Execution {
            result: result.map_err(|e| classify(e, fuel)),
            instructions,
            msg,
        }
    }

    fn call(&mut self, entry: &Entry) -> wasmtime::Result<()> {
        match entry {
            Entry::Export(name) => {
                let func = self
                    .instance
                    .get_typed_func::<(), ()>(&mut self.store, name)?;
                func.call(&mut self.store, ())
            }
            Entry::Table { fun, env } => {
                let Some(table) = self.table else {
                    return Err(wasmtime::Error::new(HostTrap {
                        code: ErrorCode::CanisterContractViolation,
                        message: "the callback names a table function but the module has no table"
                            .into(),
                    }));
                };
                let func = match table.get(&mut self.store, u64::from(*fun)) {
                    Some(Ref::Func(Some(f))) => f,
                    _ => {
                        return Err(wasmtime::Error::new(HostTrap {
                            code: ErrorCode::CanisterContractViolation,
                            message: format!(
                                "callback function index {fun} is not a function of the table"
                            ),
                        }))
                    }
                };
                let typed = func.typed::<i32, ()>(&self.store).map_err(|_| {
                    wasmtime::Error::new(HostTrap {
                        code: ErrorCode::CanisterContractViolation,
                        message: format!("callback function {fun} must have type [i32] -> []"),
                    })
                })?;
                typed.call(&mut self.store, *env as i32)
            }
        }
    }

    /// Makes the live state the committed state.
    pub fn commit(&mut self) {
        if let Some(memory) = self.memory {
            sync_pages(
                memory.data(&self.store),
                &mut self.committed_heap,
                &mut self.heap_dirty,
            );
        }
        self.committed_globals = self
            .globals
            .iter()
            .map(|g| g.get(&mut self.store))
            .collect();
    }

    /// Restores the committed state.
    pub fn rollback(
        &mut self,
        engine: &Engine,
        linker: &Linker<HostState>,
        fresh_msg: MessageState,
    ) -> Result<(), (ErrorCode, String)> {
        let grew = self.heap_bytes() > self.committed_heap.len();
        if grew {
            let max_heap = self.store.data().max_heap_bytes;
            let (fresh, _, _) =
                Wasm::instantiate(engine, linker, &self.compiled, max_heap, fresh_msg);
            let mut fresh = fresh?;
            if let Some(memory) = fresh.memory {
                let have = memory.data_size(&fresh.store);
                let want = self.committed_heap.len();
                if want > have {
                    let pages = ((want - have) / (64 * 1024)) as u64;
                    memory
                        .grow(&mut fresh.store, pages)
                        .map_err(|e| (ErrorCode::CanisterOutOfMemory, e.to_string()))?;
                }
            }
            fresh.committed_heap = std::mem::take(&mut self.committed_heap);
            fresh.committed_globals = std::mem::take(&mut self.committed_globals);
            fresh.heap_dirty = std::mem::take(&mut self.heap_dirty);
            *self = fresh;
        }
        if let Some(memory) = self.memory {
            let heap = memory.data_mut(&mut self.store);
            let len = heap.len().min(self.committed_heap.len());
            let mut start = 0;
            while start < len {
                let end = (start + PAGE).min(len);
                if heap[start..end] != self.committed_heap[start..end] {
                    heap[start..end].copy_from_slice(&self.committed_heap[start..end]);
                }
                start = end;
            }
        }
        for (g, v) in self.globals.iter().zip(self.committed_globals.iter()) {
            g.set(&mut self.store, *v)
                .map_err(|e| (ErrorCode::CanisterTrapped, e.to_string()))?;
        }
        Ok(())
    }

    /// The committed heap (for tests and snapshots).
    pub fn committed_heap_len(&self) -> usize {
        self.committed_heap.len()
    }

    /// The committed heap and mutable globals, and the heap's pages changed
    /// since the last checkpoint (for checkpoints).
    pub fn committed(&self) -> (&[u8], &[Val], &DirtyPages) {
        (
            &self.committed_heap,
            &self.committed_globals,
            &self.heap_dirty,
        )
    }

    /// A checkpoint holds the committed state: nothing is dirty.
    pub fn mark_checkpointed(&mut self) {
        self.heap_dirty.clean();
    }

    /// Makes `heap` and `globals` (a checkpoint's) the live and committed
    /// state of this fresh instance, as `rollback` restores a committed
    /// state: the memory grows to the heap's size and takes its contents.
    pub fn restore_committed(&mut self, heap: Vec<u8>, globals: Vec<Val>) -> Result<(), String> {
        if globals.len() != self.globals.len() {
            return Err(format!(
                "expected {} mutable globals for the module, found {} in the checkpoint",
                self.globals.len(),
                globals.len()
            ));
        }
        match self.memory {
            Some(memory) => {
                let have = memory.data_size(&self.store);
                if heap.len() < have || !heap.len().is_multiple_of(64 * 1024) {
                    return Err(format!(
                        "expected a heap of at least {have} bytes in whole wasm pages, found {} bytes",
                        heap.len()
                    ));
                }
                let pages = ((heap.len() - have) / (64 * 1024)) as u64;
                if pages > 0 {
                    memory
                        .grow(&mut self.store, pages)
                        .map_err(|e| format!("growing the heap to {} bytes: {e}", heap.len()))?;
                }
                memory.data_mut(&mut self.store).copy_from_slice(&heap);
            }
            None if !heap.is_empty() => {
                return Err(format!(
                    "the module has no memory but the checkpoint holds a heap of {} bytes",
                    heap.len()
                ))
            }
            None => {}
        }
        for (g, v) in self.globals.iter().zip(globals.iter()) {
            g.set(&mut self.store, *v)
                .map_err(|e| format!("setting a global: {e}"))?;
        }
        self.committed_heap = heap;
        self.committed_globals = globals;
        self.heap_dirty.clean();
        Ok(())
    }
}

fn take_msg(store: &mut Store<HostState>) -> MessageState {
    match store.data_mut().msg.take() {
        Some(m) => *m,
        // Only reachable if the state was never set, which `run` and
        // `instantiate` always do.
        None => MessageState::new(
            crate::system_api::ApiType::Start,
            Principal::anonymous(),
            Principal::anonymous(),
            Arc::default(),
            Arc::default(),
        ),
    }
}

/// A canister and everything the replica keeps for it.
pub(crate) struct Canister {
    pub id: Principal,
    pub controllers: Vec<Principal>,
    pub cycles: u128,
    pub status: CanisterStatus,
    pub version: u64,
    pub certified_data: Vec<u8>,
    pub global_timer: u64,
    pub chunks: BTreeMap<[u8; 32], Vec<u8>>,
    pub stable: StableMemory,
    pub wasm: Option<Wasm>,
    pub freezing_threshold: u64,
    pub wasm_memory_limit: u64,
    /// Environment variables of the settings, by name.
    pub env_vars: BTreeMap<String, String>,
    /// Requests waiting for the canister to stop (origins to answer).
    pub stop_waiters: Vec<crate::messaging::Origin>,
}

impl Canister {
    pub fn new(id: Principal, controllers: Vec<Principal>, cycles: u128) -> Canister {
        Canister {
            id,
            controllers,
            cycles,
            status: CanisterStatus::Running,
            version: 0,
            certified_data: Vec::new(),
            global_timer: 0,
            chunks: BTreeMap::new(),
            stable: StableMemory::default(),
            wasm: None,
            freezing_threshold: 2_592_000,
            wasm_memory_limit: 0,
            env_vars: BTreeMap::new(),
            stop_waiters: Vec::new(),
        }
    }

    pub fn module_hash(&self) -> Option<[u8; 32]> {
        self.wasm.as_ref().map(|w| w.compiled.hash)
    }

    pub fn info(&self) -> Option<&ModuleInfo> {
        self.wasm.as_ref().map(|w| &*w.compiled.info)
    }

    /// The `wasm_memory_limit` an execution is held to: the canister's
    /// setting, except in queries and `inspect_message` (as on the IC).
    pub fn wasm_memory_limit_for(&self, query: bool) -> u64 {
        if query {
            0
        } else {
            self.wasm_memory_limit
        }
    }

    /// The memory the canister pays for: heap, stable memory, module and
    /// chunk store, in bytes.
    pub fn memory_size(&self) -> u64 {
        self.wasm
            .as_ref()
            .map(|w| w.heap_bytes() as u64 + w.compiled.size)
            .unwrap_or(0)
            + self.stable.bytes().len() as u64
            + self.chunks.values().map(|c| c.len() as u64).sum::<u64>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_pages_copies_differences_and_growth() {
        let mut dst = vec![0u8; 3 * PAGE];
        let mut src = dst.clone();
        src[PAGE + 7] = 9;
        src.extend_from_slice(&[5u8; 100]);
        let mut dirty = DirtyPages::default();
        dirty.clean();
        sync_pages(&src, &mut dst, &mut dirty);
        assert_eq!(src, dst);
        let page = crate::checkpoint::PAGE_BYTES;
        assert!(dirty.is_dirty((PAGE + 7) / page));
        assert!(dirty.is_dirty(3 * PAGE / page));
        let mut clean = DirtyPages::default();
        clean.clean();
        sync_pages(&src, &mut dst, &mut clean);
        assert!(!clean.is_dirty(0), "nothing differed");
    }
}
