//! [`LocalReplica::checkpoint`] and [`LocalReplica::restore`]: the
//! replica's state to and from a checkpoint directory (format and layout
//! in [`crate::checkpoint`]).
//!
//! A checkpoint is taken between rounds, so every canister's live heap is
//! its committed heap and every stable memory is committed: the committed
//! state is what is written. Restoring instantiates each module again
//! (compiled modules come from the process's cache or `Config::cache_dir`
//! when they are there), grows its memory and copies the heap in, and sets
//! the mutable globals, as a rollback does.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use candid::Principal;
use wasmtime::{Val, V128};

use super::{Config, LocalReplica};
use crate::canister::{Canister, CanisterStatus, Wasm};
use crate::checkpoint::store::{sha256, Dir};
use crate::checkpoint::{
    cpu_threads, par_map, CheckpointError, CheckpointStats, DirtyPages, Hash, Manifest,
    StoredCallContext, StoredCallback, StoredCanister, StoredCode, StoredLedger, StoredMemory,
    StoredMessage, StoredOrigin, StoredReject, StoredReplica, StoredResponse, StoredSystem,
    StoredVal, IO_THREADS, PAGE_BYTES,
};
use crate::error::{Error, ErrorCode, Reject};
use crate::messaging::{CallContext, Callback, IngressStatus, Message, Origin, Response};
use crate::system::cycles_ledger::{AccountKey, Ledger};
use crate::system::SystemState;
use crate::system_api::{ApiType, StableMemory};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum MemoryKind {
    Heap,
    Stable,
}

/// The page hashes of one memory as of the last checkpoint.
#[derive(Debug, Clone)]
struct PageTable {
    len: usize,
    hashes: Vec<Hash>,
}

/// What the replica knows of its last checkpoint.
#[derive(Debug, Default)]
pub(crate) struct Tracker {
    /// Page hashes of every memory at the last checkpoint or restore (the
    /// memories' dirty pages say what changed since).
    tables: HashMap<(Principal, MemoryKind), PageTable>,
    /// The directory of the last checkpoint, its number and the blobs its
    /// manifest names. `None` after a failed checkpoint: the next one
    /// lists the directory instead of trusting this.
    on_disk: Option<OnDisk>,
}

#[derive(Debug)]
struct OnDisk {
    root: PathBuf,
    seq: u64,
    blobs: HashSet<Hash>,
}

/// One memory as a checkpoint sees it.
struct MemoryView<'a> {
    key: (Principal, MemoryKind),
    bytes: &'a [u8],
    dirty: &'a DirtyPages,
}

fn page(bytes: &[u8], p: usize) -> &[u8] {
    &bytes[p * PAGE_BYTES..((p + 1) * PAGE_BYTES).min(bytes.len())]
}

fn table_bytes(hashes: &[Hash]) -> Vec<u8> {
    hashes.concat()
}

fn corrupt(path: &Path, reason: impl Into<String>) -> CheckpointError {
    CheckpointError::Corrupt {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

impl LocalReplica {
    /// Writes the replica's whole state under `dir` (created if needed):
    /// canisters, time and counters, and the messages, call contexts and
    /// callbacks in flight. Atomic: until the new manifest is in place the
    /// previous checkpoint stays whole and is what [`LocalReplica::restore`]
    /// reads. Incremental: heap and stable-memory pages unchanged since
    /// the previous checkpoint are neither hashed nor written again, nor
    /// is any blob already in `dir`. Execution records and logs are not
    /// part of it.
    pub fn checkpoint(&mut self, dir: &Path) -> Result<CheckpointStats, Error> {
        Ok(self.write_checkpoint(dir)?)
    }

    /// A replica restored from the latest checkpoint in `dir`. `config`
    /// gives limits, fees, the default cycles and the cache directory;
    /// the checkpoint gives the state (its seed, time and root key win
    /// over `config`'s). Execution records and logs start empty.
    pub fn restore(dir: &Path, config: Config) -> Result<LocalReplica, Error> {
        let dir = Dir::open(dir)?;
        let manifests = dir.manifests()?;
        let Some((seq, path)) = manifests.last() else {
            return Err(CheckpointError::NoCheckpoint {
                dir: dir.root().to_path_buf(),
            }
            .into());
        };
        let (version, payload) = dir.read_manifest(path)?;
        let (manifest, rest): (Manifest, &[u8]) = postcard::take_from_bytes(&payload)
            .map_err(|e| corrupt(path, format!("decoding the manifest: {e}")))?;
        // Version 2 adds the system canisters after version 1's manifest.
        let system: Option<StoredSystem> = if version >= 2 {
            postcard::from_bytes(rest)
                .map_err(|e| corrupt(path, format!("decoding the system canisters: {e}")))?
        } else {
            None
        };
        if manifest.seq != *seq {
            return Err(corrupt(
                path,
                format!("expected checkpoint {seq}, found {}", manifest.seq),
            )
            .into());
        }
        let mut ic = LocalReplica::with_config(config)?;
        ic.restore_from(&dir, manifest, path)?;
        // The checkpoint's system canisters win over the config's (a
        // checkpoint without them keeps what the config made).
        if let Some(stored) = system {
            ic.system = Some(live_system(stored));
        }
        Ok(ic)
    }

    fn write_checkpoint(&mut self, dir: &Path) -> Result<CheckpointStats, CheckpointError> {
        let dir = Dir::create(dir)?;
        let manifests = dir.manifests()?;
        let latest = manifests.last().map(|(s, _)| *s);
        let seq = latest.map_or(1, |s| s + 1);
        let mut stats = CheckpointStats {
            seq,
            canisters: self.canisters.len() as u64,
            ..CheckpointStats::default()
        };
        // The blobs on disk: those the previous checkpoint named if it
        // was this replica's and is still the latest here; otherwise
        // whatever the directory holds (and leftovers of an interrupted
        // write go).
        let mut known = match self.checkpoints.on_disk.take() {
            Some(prev) if prev.root == dir.root() && Some(prev.seq) == latest => {
                stats.files_removed += dir.remove_tmp_files(false)?;
                prev.blobs
            }
            _ => {
                stats.files_removed += dir.remove_tmp_files(true)?;
                dir.list_blobs()?
            }
        };
        let before = known.clone();

        // Page hashes: reused for clean pages, computed for the others.
        let memories = self.memory_views();
        let mut tables: Vec<Vec<Hash>> = Vec::with_capacity(memories.len());
        let mut to_hash = Vec::new();
        for (m, view) in memories.iter().enumerate() {
            let n = view.bytes.len().div_ceil(PAGE_BYTES);
            let prev = self.checkpoints.tables.get(&view.key);
            let mut hashes = vec![[0u8; 32]; n];
            for (p, hash) in hashes.iter_mut().enumerate() {
                let reusable = prev.and_then(|t| {
                    let same_extent = t.len == view.bytes.len()
                        || (p + 1) * PAGE_BYTES <= t.len.min(view.bytes.len());
                    t.hashes.get(p).filter(|_| same_extent)
                });
                match reusable {
                    Some(h) if !view.dirty.is_dirty(p) => *hash = *h,
                    _ => to_hash.push((m, p)),
                }
            }
            tables.push(hashes);
        }
        stats.pages_hashed = to_hash.len() as u64;
        let hashed = par_map(&to_hash, cpu_threads(), |(m, p)| {
            sha256(page(memories[*m].bytes, *p))
        });
        for ((m, p), h) in to_hash.iter().zip(hashed) {
            tables[*m][*p] = h;
        }

        // The blobs to write: pages, page tables, modules, chunks.
        let mut writes: Vec<(Hash, &[u8])> = Vec::new();
        let mut pages_total = 0u64;
        for (view, hashes) in memories.iter().zip(&tables) {
            for (p, h) in hashes.iter().enumerate() {
                pages_total += 1;
                if known.insert(*h) {
                    writes.push((*h, page(view.bytes, p)));
                    stats.pages_written += 1;
                }
            }
        }
        stats.pages_unchanged = pages_total - stats.pages_written;
        let table_blobs: Vec<(Hash, Vec<u8>)> = tables
            .iter()
            .map(|t| {
                let bytes = table_bytes(t);
                (sha256(&bytes), bytes)
            })
            .collect();
        for (h, bytes) in &table_blobs {
            if known.insert(*h) {
                writes.push((*h, bytes));
            }
        }
        for c in self.canisters.values() {
            if let Some(w) = &c.wasm {
                if known.insert(w.compiled.hash) {
                    writes.push((w.compiled.hash, &w.compiled.wasm));
                }
            }
            for (h, chunk) in &c.chunks {
                if !known.contains(h) {
                    if sha256(chunk) != *h {
                        return Err(CheckpointError::Encode(format!(
                            "canister {}: a chunk stored under {} has another SHA-256",
                            c.id,
                            hex::encode(h)
                        )));
                    }
                    known.insert(*h);
                    writes.push((*h, chunk));
                }
            }
        }
        // A blob may be on disk from an interrupted checkpoint.
        let results = par_map(&writes, IO_THREADS, |(h, bytes)| {
            if dir.has_blob(h) {
                Ok(0)
            } else {
                dir.write_blob(h, bytes).map(|()| bytes.len() as u64)
            }
        });
        for r in results {
            let n = r?;
            stats.bytes_written += n;
            stats.blobs_written += u64::from(n > 0);
        }
        if !writes.is_empty() {
            dir.sync_blobs(writes.iter().map(|(h, _)| h))?;
        }

        // The manifest: from here on this checkpoint is the latest.
        let table_hashes: HashMap<(Principal, MemoryKind), (usize, Hash)> = memories
            .iter()
            .zip(&table_blobs)
            .map(|(v, (h, _))| (v.key, (v.bytes.len(), *h)))
            .collect();
        let manifest = self.manifest(seq, &table_hashes)?;
        let mut payload =
            postcard::to_allocvec(&manifest).map_err(|e| CheckpointError::Encode(e.to_string()))?;
        let system = self.system.as_ref().map(stored_system);
        payload.extend(
            postcard::to_allocvec(&system).map_err(|e| CheckpointError::Encode(e.to_string()))?,
        );
        stats.bytes_written += dir.write_manifest(seq, &payload)?;

        // What the manifest names; everything else goes.
        let mut referenced: HashSet<Hash> = manifest.direct_blobs().into_iter().collect();
        referenced.extend(tables.iter().flatten().copied());
        let new_tables: HashMap<(Principal, MemoryKind), PageTable> = memories
            .iter()
            .zip(tables)
            .map(|(v, hashes)| {
                (
                    v.key,
                    PageTable {
                        len: v.bytes.len(),
                        hashes,
                    },
                )
            })
            .collect();
        drop(memories);
        // Deleting garbage is best effort: the checkpoint is in place, and
        // the next one lists the directory again if this fails.
        let collected = (|| -> Result<u64, CheckpointError> {
            let mut removed = 0;
            for (old, _) in &manifests {
                dir.remove_manifest(*old)?;
                removed += 1;
            }
            for h in before.iter().filter(|h| !referenced.contains(*h)) {
                removed += u64::from(dir.remove_blob(h)?);
            }
            Ok(removed)
        })();
        for c in self.canisters.values_mut() {
            c.stable.mark_checkpointed();
            if let Some(w) = c.wasm.as_mut() {
                w.mark_checkpointed();
            }
        }
        self.checkpoints.tables = new_tables;
        if let Ok(removed) = collected {
            stats.files_removed += removed;
            self.checkpoints.on_disk = Some(OnDisk {
                root: dir.root().to_path_buf(),
                seq,
                blobs: referenced,
            });
        }
        Ok(stats)
    }

    /// Every heap and stable memory, as committed.
    fn memory_views(&self) -> Vec<MemoryView<'_>> {
        let mut out = Vec::new();
        for c in self.canisters.values() {
            out.push(MemoryView {
                key: (c.id, MemoryKind::Stable),
                bytes: c.stable.bytes(),
                dirty: c.stable.dirty(),
            });
            if let Some(w) = &c.wasm {
                let (heap, _, dirty) = w.committed();
                out.push(MemoryView {
                    key: (c.id, MemoryKind::Heap),
                    bytes: heap,
                    dirty,
                });
            }
        }
        out
    }

    fn manifest(
        &self,
        seq: u64,
        tables: &HashMap<(Principal, MemoryKind), (usize, Hash)>,
    ) -> Result<Manifest, CheckpointError> {
        let memory = |id: Principal, kind: MemoryKind| {
            tables
                .get(&(id, kind))
                .map(|(len, table)| StoredMemory {
                    len: *len as u64,
                    table: *table,
                })
                .ok_or_else(|| CheckpointError::Encode(format!("no page table for {id}")))
        };
        let mut canisters = Vec::with_capacity(self.canisters.len());
        for c in self.canisters.values() {
            let code = match &c.wasm {
                Some(w) => {
                    let (_, globals, _) = w.committed();
                    Some(StoredCode {
                        module: w.compiled.hash,
                        heap: memory(c.id, MemoryKind::Heap)?,
                        globals: globals
                            .iter()
                            .map(|v| stored_val(c.id, v))
                            .collect::<Result<_, _>>()?,
                    })
                }
                None => None,
            };
            canisters.push(StoredCanister {
                id: c.id,
                controllers: c.controllers.clone(),
                cycles: c.cycles,
                status: c.status.code(),
                version: c.version,
                certified_data: c.certified_data.clone(),
                global_timer: c.global_timer,
                chunks: c.chunks.keys().copied().collect(),
                stable: memory(c.id, MemoryKind::Stable)?,
                freezing_threshold: c.freezing_threshold,
                wasm_memory_limit: c.wasm_memory_limit,
                env_vars: c
                    .env_vars
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                stop_waiters: c.stop_waiters.iter().map(stored_origin).collect(),
                code,
            });
        }
        Ok(Manifest {
            seq,
            replica: StoredReplica {
                time: self.time,
                round: self.round,
                next_id: self.next_id,
                next_canister_index: self.next_canister_index,
                seed: self.seed,
                rand_counter: self.rand_counter,
                root_key: self.root_key.to_vec(),
                last_storage_charge: self.last_storage_charge,
                compiled: self.compiled.iter().copied().collect(),
            },
            canisters,
            queue: self.queue.iter().map(stored_message).collect(),
            contexts: self
                .contexts
                .iter()
                .map(|(id, ctx)| {
                    (
                        *id,
                        StoredCallContext {
                            canister: ctx.canister,
                            origin: stored_origin(&ctx.origin),
                            caller: ctx.caller,
                            deadline: ctx.deadline,
                            available_cycles: ctx.available_cycles,
                            responded: ctx.responded,
                            outstanding: ctx.outstanding,
                            instructions: ctx.instructions,
                        },
                    )
                })
                .collect(),
            callbacks: self
                .callbacks
                .iter()
                .map(|(id, cb)| {
                    (
                        *id,
                        StoredCallback {
                            call_context: cb.call_context,
                            canister: cb.canister,
                            on_reply: cb.on_reply,
                            on_reject: cb.on_reject,
                            on_cleanup: cb.on_cleanup,
                            deadline: cb.deadline,
                            prepaid_callback: cb.prepaid_callback,
                            prepaid_response: cb.prepaid_response,
                        },
                    )
                })
                .collect(),
            ingress: self
                .ingress
                .iter()
                .map(|(id, status)| {
                    let r = match status {
                        IngressStatus::Processing => None,
                        IngressStatus::Done(r) => Some(stored_response(r)),
                    };
                    (*id, r)
                })
                .collect(),
        })
    }

    /// Takes the state of `manifest` (read from `path` in `dir`).
    fn restore_from(
        &mut self,
        dir: &Dir,
        manifest: Manifest,
        path: &Path,
    ) -> Result<(), CheckpointError> {
        let r = &manifest.replica;
        self.time = r.time;
        self.round = r.round;
        self.next_id = r.next_id;
        self.next_canister_index = r.next_canister_index;
        self.seed = r.seed;
        self.rand_counter = r.rand_counter;
        self.root_key = Arc::new(r.root_key.clone());
        self.last_storage_charge = r.last_storage_charge;
        self.compiled = r.compiled.iter().copied().collect::<BTreeSet<_>>();

        let mut tables = HashMap::new();
        let max_heap = (self.limits.max_heap_pages * crate::limits::WASM_PAGE) as usize;
        for c in manifest.canisters {
            let id = c.id;
            let stable = load_memory(dir, &c.stable, id)?;
            let mut canister = Canister::new(id, c.controllers, c.cycles);
            canister.status = match c.status {
                1 => CanisterStatus::Running,
                2 => CanisterStatus::Stopping,
                3 => CanisterStatus::Stopped,
                n => {
                    return Err(corrupt(
                        path,
                        format!("canister {id}: expected a status 1-3, found {n}"),
                    ))
                }
            };
            canister.version = c.version;
            canister.certified_data = c.certified_data;
            canister.global_timer = c.global_timer;
            for h in &c.chunks {
                canister.chunks.insert(*h, dir.read_blob(h)?);
            }
            canister.stable = StableMemory::from_checkpoint(stable.bytes);
            canister.freezing_threshold = c.freezing_threshold;
            canister.wasm_memory_limit = c.wasm_memory_limit;
            canister.env_vars = c.env_vars.into_iter().collect::<BTreeMap<_, _>>();
            canister.stop_waiters = c.stop_waiters.iter().map(live_origin).collect();
            tables.insert(
                (id, MemoryKind::Stable),
                PageTable {
                    len: c.stable.len as usize,
                    hashes: stable.hashes,
                },
            );
            self.canisters.insert(id, canister);
            let Some(code) = c.code else {
                continue;
            };
            let fail = |reason: String| CheckpointError::Canister {
                canister: id,
                reason,
            };
            let module = dir.read_blob(&code.module)?;
            let compiled = self
                .compile(id, &module)
                .map_err(|r| fail(format!("compiling its module: {}", r.message)))?;
            let heap = load_memory(dir, &code.heap, id)?;
            let globals: Vec<Val> = code.globals.iter().map(|v| live_val(*v)).collect();
            let msg = self.message(ApiType::Start, id, id, self.limits.max_instructions_install);
            let (wasm, _, _) =
                Wasm::instantiate(&self.engine, &self.linker, &compiled, max_heap, msg);
            let mut wasm = wasm.map_err(|(_, text)| fail(format!("instantiating: {text}")))?;
            wasm.restore_committed(heap.bytes, globals)
                .map_err(|e| fail(format!("restoring its heap: {e}")))?;
            tables.insert(
                (id, MemoryKind::Heap),
                PageTable {
                    len: code.heap.len as usize,
                    hashes: heap.hashes,
                },
            );
            if let Some(c) = self.canisters.get_mut(&id) {
                c.wasm = Some(wasm);
            }
        }
        self.queue = manifest
            .queue
            .into_iter()
            .map(|m| live_message(m, path))
            .collect::<Result<VecDeque<_>, _>>()?;
        self.contexts = manifest
            .contexts
            .into_iter()
            .map(|(id, ctx)| {
                (
                    id,
                    CallContext {
                        canister: ctx.canister,
                        origin: live_origin(&ctx.origin),
                        caller: ctx.caller,
                        deadline: ctx.deadline,
                        available_cycles: ctx.available_cycles,
                        responded: ctx.responded,
                        outstanding: ctx.outstanding,
                        instructions: ctx.instructions,
                    },
                )
            })
            .collect();
        self.callbacks = manifest
            .callbacks
            .into_iter()
            .map(|(id, cb)| {
                (
                    id,
                    Callback {
                        call_context: cb.call_context,
                        canister: cb.canister,
                        on_reply: cb.on_reply,
                        on_reject: cb.on_reject,
                        on_cleanup: cb.on_cleanup,
                        deadline: cb.deadline,
                        prepaid_callback: cb.prepaid_callback,
                        prepaid_response: cb.prepaid_response,
                    },
                )
            })
            .collect();
        self.ingress = manifest
            .ingress
            .into_iter()
            .map(|(id, r)| {
                let status = match r {
                    None => IngressStatus::Processing,
                    Some(r) => IngressStatus::Done(live_response(r, path)?),
                };
                Ok((id, status))
            })
            .collect::<Result<_, CheckpointError>>()?;
        // The pages' hashes are known, so the next checkpoint hashes only
        // what changes; it lists the directory, which may hold what a
        // checkpoint interrupted before this restore left.
        self.checkpoints = Tracker {
            tables,
            on_disk: None,
        };
        Ok(())
    }
}

/// A memory read back from its page table and pages.
struct LoadedMemory {
    bytes: Vec<u8>,
    hashes: Vec<Hash>,
}

fn load_memory(
    dir: &Dir,
    stored: &StoredMemory,
    canister: Principal,
) -> Result<LoadedMemory, CheckpointError> {
    let table = dir.read_blob(&stored.table)?;
    let len = usize::try_from(stored.len).map_err(|_| CheckpointError::Canister {
        canister,
        reason: format!("a memory of {} bytes does not fit here", stored.len),
    })?;
    let n = len.div_ceil(PAGE_BYTES);
    if table.len() != n * 32 {
        return Err(corrupt(
            &dir.blob_path(&stored.table),
            format!(
                "expected a page table of {n} hashes for {len} bytes, found {} bytes",
                table.len()
            ),
        ));
    }
    let hashes: Vec<Hash> = table
        .chunks_exact(32)
        .map(|c| {
            let mut h = [0u8; 32];
            h.copy_from_slice(c);
            h
        })
        .collect();
    let mut bytes = Vec::new();
    bytes
        .try_reserve_exact(len)
        .map_err(|e| CheckpointError::Canister {
            canister,
            reason: format!("allocating a memory of {len} bytes: {e}"),
        })?;
    bytes.resize(len, 0);
    // Zero pages need no reading: the memory starts zeroed. Every other
    // blob is read and checked once, however many pages hold it, in
    // batches that bound the memory used on top of the heap.
    let zero = sha256(&[0u8; PAGE_BYTES]);
    let mut positions: HashMap<Hash, Vec<usize>> = HashMap::new();
    for (p, h) in hashes.iter().enumerate() {
        let full = (p + 1) * PAGE_BYTES <= len;
        if !(full && *h == zero) {
            positions.entry(*h).or_default().push(p);
        }
    }
    let unique: Vec<(Hash, Vec<usize>)> = positions.into_iter().collect();
    const BATCH: usize = 1024;
    for batch in unique.chunks(BATCH) {
        let pages = par_map(batch, IO_THREADS, |(h, _)| dir.read_blob(h));
        for ((h, at), page) in batch.iter().zip(pages) {
            let page = page?;
            for p in at {
                let dst = &mut bytes[p * PAGE_BYTES..((p + 1) * PAGE_BYTES).min(len)];
                if page.len() != dst.len() {
                    return Err(corrupt(
                        &dir.blob_path(h),
                        format!(
                            "expected a page of {} bytes, found {}",
                            dst.len(),
                            page.len()
                        ),
                    ));
                }
                dst.copy_from_slice(&page);
            }
        }
    }
    Ok(LoadedMemory { bytes, hashes })
}

fn stored_val(canister: Principal, v: &Val) -> Result<StoredVal, CheckpointError> {
    Ok(match v {
        Val::I32(x) => StoredVal::I32(*x),
        Val::I64(x) => StoredVal::I64(*x),
        Val::F32(bits) => StoredVal::F32(*bits),
        Val::F64(bits) => StoredVal::F64(*bits),
        Val::V128(x) => StoredVal::V128(x.as_u128()),
        other => {
            return Err(CheckpointError::Canister {
                canister,
                reason: format!(
                    "expected mutable globals of number or vector types, found {other:?}"
                ),
            })
        }
    })
}

fn live_val(v: StoredVal) -> Val {
    match v {
        StoredVal::I32(x) => Val::I32(x),
        StoredVal::I64(x) => Val::I64(x),
        StoredVal::F32(bits) => Val::F32(bits),
        StoredVal::F64(bits) => Val::F64(bits),
        StoredVal::V128(x) => Val::V128(V128::from(x)),
    }
}

fn stored_system(s: &SystemState) -> StoredSystem {
    StoredSystem {
        ledger: StoredLedger {
            balances: s
                .ledger
                .balances
                .iter()
                .map(|(k, b)| (k.owner, k.subaccount, *b))
                .collect(),
            blocks: s.ledger.blocks,
            total_supply: s.ledger.total_supply,
        },
    }
}

fn live_system(s: StoredSystem) -> SystemState {
    SystemState {
        ledger: Ledger {
            balances: s
                .ledger
                .balances
                .into_iter()
                .map(|(owner, subaccount, b)| (AccountKey { owner, subaccount }, b))
                .collect(),
            blocks: s.ledger.blocks,
            total_supply: s.ledger.total_supply,
        },
    }
}

fn stored_origin(o: &Origin) -> StoredOrigin {
    match o {
        Origin::Ingress { message_id } => StoredOrigin::Ingress {
            message_id: *message_id,
        },
        Origin::Canister { caller, callback } => StoredOrigin::Canister {
            caller: *caller,
            callback: *callback,
        },
        Origin::System => StoredOrigin::System,
    }
}

fn live_origin(o: &StoredOrigin) -> Origin {
    match o {
        StoredOrigin::Ingress { message_id } => Origin::Ingress {
            message_id: *message_id,
        },
        StoredOrigin::Canister { caller, callback } => Origin::Canister {
            caller: *caller,
            callback: *callback,
        },
        StoredOrigin::System => Origin::System,
    }
}

fn stored_response(r: &Response) -> StoredResponse {
    match r {
        Response::Reply(bytes) => StoredResponse::Reply(bytes.clone()),
        Response::Reject(r) => StoredResponse::Reject(StoredReject {
            code: r.code.as_u32(),
            error_code: r.error_code.map(|e| e as u32),
            message: r.message.clone(),
        }),
    }
}

fn live_response(r: StoredResponse, path: &Path) -> Result<Response, CheckpointError> {
    Ok(match r {
        StoredResponse::Reply(bytes) => Response::Reply(bytes),
        StoredResponse::Reject(r) => {
            let code = LocalReplica::reject_code(r.code).ok_or_else(|| {
                corrupt(
                    path,
                    format!("expected a reject code 1-6, found {}", r.code),
                )
            })?;
            let error_code =
                match r.error_code {
                    None => None,
                    Some(n) => Some(ErrorCode::from_u32(n).ok_or_else(|| {
                        corrupt(path, format!("unknown error code {n} in a reject"))
                    })?),
                };
            Response::Reject(Reject {
                code,
                error_code,
                message: r.message,
            })
        }
    })
}

fn stored_message(m: &Message) -> StoredMessage {
    match m {
        Message::Request {
            sender,
            receiver,
            method,
            arg,
            cycles,
            origin,
            deadline,
        } => StoredMessage::Request {
            sender: *sender,
            receiver: *receiver,
            method: method.clone(),
            arg: arg.clone(),
            cycles: *cycles,
            origin: stored_origin(origin),
            deadline: *deadline,
        },
        Message::Response {
            receiver,
            callback,
            response,
            refund,
        } => StoredMessage::Response {
            receiver: *receiver,
            callback: *callback,
            response: stored_response(response),
            refund: *refund,
        },
    }
}

fn live_message(m: StoredMessage, path: &Path) -> Result<Message, CheckpointError> {
    Ok(match m {
        StoredMessage::Request {
            sender,
            receiver,
            method,
            arg,
            cycles,
            origin,
            deadline,
        } => Message::Request {
            sender,
            receiver,
            method,
            arg,
            cycles,
            origin: live_origin(&origin),
            deadline,
        },
        StoredMessage::Response {
            receiver,
            callback,
            response,
            refund,
        } => Message::Response {
            receiver,
            callback,
            response: live_response(response, path)?,
            refund,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_round_trip_by_number() {
        let mut seen = HashSet::new();
        for e in ErrorCode::ALL {
            assert_eq!(ErrorCode::from_u32(e as u32), Some(e));
            assert!(seen.insert(e as u32), "{e:?} twice");
        }
        assert_eq!(ErrorCode::from_u32(999), None);
    }

    #[test]
    fn values_round_trip() {
        let vals = [
            Val::I32(-5),
            Val::I64(i64::MIN),
            Val::F32(f32::NAN.to_bits() | 3),
            Val::F64(1.5f64.to_bits()),
            Val::V128(V128::from(u128::MAX - 7)),
        ];
        let anon = Principal::anonymous();
        for v in vals {
            let stored = stored_val(anon, &v).unwrap();
            let back = live_val(stored);
            assert_eq!(stored_val(anon, &back).unwrap(), stored);
        }
    }

    #[test]
    fn messages_round_trip() {
        let m = Message::Response {
            receiver: Principal::anonymous(),
            callback: 9,
            response: Response::Reject(Reject::new(ErrorCode::DeadlineExpired, "late")),
            refund: 1 << 100,
        };
        let stored = stored_message(&m);
        let bytes = postcard::to_allocvec(&stored).unwrap();
        let back: StoredMessage = postcard::from_bytes(&bytes).unwrap();
        let live = live_message(back, Path::new("x")).unwrap();
        match live {
            Message::Response {
                callback,
                response: Response::Reject(r),
                refund,
                ..
            } => {
                assert_eq!((callback, refund), (9, 1 << 100));
                assert_eq!(r, Reject::new(ErrorCode::DeadlineExpired, "late"));
            }
            other => panic!("{other:?}"),
        }
    }
}
