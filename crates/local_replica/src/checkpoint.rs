//! Checkpoints: the replica's whole state on disk, written atomically and
//! incrementally, and read back by [`LocalReplica::restore`].
//!
//! ```no_run
//! use std::path::Path;
//! use local_replica::{Config, LocalReplica};
//!
//! # fn main() -> Result<(), local_replica::Error> {
//! let dir = Path::new("/var/lib/icllm/replica");
//! let mut ic = LocalReplica::new()?;
//! // ... install canisters, run rounds ...
//! let stats = ic.checkpoint(dir)?;        // between two rounds, any time
//! println!("{} bytes, {} pages written", stats.bytes_written, stats.pages_written);
//! let ic = LocalReplica::restore(dir, Config::default())?; // in the next process
//! # Ok(()) }
//! ```
//!
//! A checkpoint holds every canister (module, committed heap and mutable
//! globals, stable memory, settings, chunk store, ...), the replica's
//! clocks, counters and seed, and everything in flight: the message queue,
//! call contexts, callbacks and ingress statuses. Execution records, logs
//! and `raw_rand` answers are observations, not state: they start empty.
//!
//! Layout of a checkpoint directory (format [`FORMAT_VERSION`]):
//!
//! - `checkpoint.<seq>.bin`: the manifest of checkpoint number `seq`
//!   (20 decimal digits): the 8 bytes `LRCKPT\r\n`, the format version
//!   (u32, little endian), the payload length (u64, little endian), the
//!   payload ([`postcard`](https://docs.rs/postcard) encoding of the
//!   replica's state, big data by reference), and the SHA-256 of
//!   everything before it. Restore reads the one with the largest `seq`.
//! - `blobs/<xx>/<sha256>`: content-addressed blobs named by the hex
//!   SHA-256 of their contents (`xx`: its first two digits): the pages of
//!   heaps and stable memories ([`PAGE_BYTES`] each), each memory's page
//!   table (the concatenated hashes of its pages), modules as installed,
//!   chunk-store chunks.
//! - `*.tmp`: files being written. A write goes to `<name>.tmp`, is
//!   synced, then renamed to `<name>`.
//!
//! A checkpoint writes the blobs that are not on disk yet, then the
//! manifest (temporary file, sync, rename, sync of the directory): until
//! that rename the previous manifest is the latest, and every blob it
//! names is still there, so a crash or kill at any point leaves the
//! previous checkpoint whole. Only then are the older manifests and the
//! blobs no manifest names deleted (and leftovers of an interrupted
//! checkpoint at the start of the next). Incremental: the replica tracks
//! which pages of each heap and stable memory changed since the last
//! checkpoint, hashes only those, and writes only pages whose contents are
//! not on disk yet; an unchanged memory costs nothing but its entry in the
//! manifest. One process writes to a directory at a time.

mod format;
pub(crate) mod store;

use std::path::PathBuf;

use candid::Principal;

pub(crate) use format::*;

#[cfg(doc)]
use crate::LocalReplica;

/// The version of the on-disk format this replica writes. Version 2 is
/// version 1's payload followed by the system canisters' state
/// ([`StoredSystem`], `None` without them); this replica reads both.
pub const FORMAT_VERSION: u32 = 2;

/// The oldest format version this replica reads.
pub const OLDEST_READABLE_VERSION: u32 = 1;

/// Size of a page of heap or stable memory on disk (one wasm page): the
/// unit in which changes are tracked and written.
pub const PAGE_BYTES: usize = 64 * 1024;

/// What a checkpoint wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckpointStats {
    /// The checkpoint's number in its directory (1 for the first).
    pub seq: u64,
    /// Bytes written to files (blobs and the manifest).
    pub bytes_written: u64,
    /// Heap and stable-memory pages written (a page whose contents are
    /// already on disk, e.g. a zero page, is not written again).
    pub pages_written: u64,
    /// Heap and stable-memory pages of the checkpoint that were not
    /// written (unchanged since the previous checkpoint, or the same
    /// contents as a page on disk).
    pub pages_unchanged: u64,
    /// Heap and stable-memory pages hashed: those changed since the
    /// previous checkpoint (all of a memory the replica has not
    /// checkpointed or restored before). The others keep their hash.
    pub pages_hashed: u64,
    /// Blobs written (pages, page tables, modules, chunks).
    pub blobs_written: u64,
    /// Files of earlier checkpoints deleted (older manifests, blobs no
    /// longer named, leftovers of interrupted writes).
    pub files_removed: u64,
    /// Canisters in the checkpoint.
    pub canisters: u64,
}

/// Why a checkpoint could not be written or restored.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// The directory holds no checkpoint.
    #[error("no checkpoint in {dir}: expected a file named checkpoint.<number>.bin")]
    NoCheckpoint { dir: PathBuf },
    /// The manifest has a format version this replica does not read.
    #[error(
        "checkpoint {path} has format version {found}; this replica reads format versions {OLDEST_READABLE_VERSION} to {supported}"
    )]
    UnsupportedVersion {
        path: PathBuf,
        found: u32,
        supported: u32,
    },
    /// A file of the checkpoint is damaged or not what it should be.
    #[error("checkpoint file {path} is corrupt: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    /// A blob the manifest names is not in the directory.
    #[error("checkpoint blob {path} is missing (named by the manifest)")]
    MissingBlob { path: PathBuf },
    /// A file operation failed.
    #[error("{operation} {path}: {source}")]
    Io {
        operation: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A canister's module or memory could not be brought back.
    #[error("canister {canister}: {reason}")]
    Canister { canister: Principal, reason: String },
    /// The state could not be encoded.
    #[error("encoding the checkpoint: {0}")]
    Encode(String),
}

/// The pages ([`PAGE_BYTES`]) of one memory changed since the last
/// checkpoint. A new memory is all dirty.
#[derive(Debug, Clone)]
pub(crate) struct DirtyPages {
    all: bool,
    bits: Vec<u64>,
}

impl Default for DirtyPages {
    fn default() -> DirtyPages {
        DirtyPages {
            all: true,
            bits: Vec::new(),
        }
    }
}

impl DirtyPages {
    /// Marks the pages of bytes `[start, end)`.
    pub fn mark(&mut self, start: usize, end: usize) {
        if self.all || start >= end {
            return;
        }
        for page in start / PAGE_BYTES..=(end - 1) / PAGE_BYTES {
            let (word, bit) = (page / 64, page % 64);
            if word >= self.bits.len() {
                self.bits.resize(word + 1, 0);
            }
            self.bits[word] |= 1 << bit;
        }
    }

    pub fn is_dirty(&self, page: usize) -> bool {
        self.all
            || self
                .bits
                .get(page / 64)
                .is_some_and(|w| w & (1 << (page % 64)) != 0)
    }

    /// Nothing is dirty (after a checkpoint or a restore).
    pub fn clean(&mut self) {
        self.all = false;
        self.bits.clear();
    }
}

/// Runs `f` on every item on up to `threads` threads; the results in
/// order.
pub(crate) fn par_map<T: Sync, R: Send>(
    items: &[T],
    threads: usize,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let threads = threads.clamp(1, items.len().max(1));
    if threads == 1 {
        return items.iter().map(f).collect();
    }
    let per = items.len().div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = items
            .chunks(per)
            .map(|chunk| {
                let f = &f;
                s.spawn(move || chunk.iter().map(f).collect::<Vec<R>>())
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| match h.join() {
                Ok(v) => v,
                Err(panic) => std::panic::resume_unwind(panic),
            })
            .collect()
    })
}

/// Threads for hashing (CPU-bound).
pub(crate) fn cpu_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(8)
}

/// Threads for writing files (each write ends with a sync, which waits on
/// the disk rather than the CPU).
pub(crate) const IO_THREADS: usize = 8;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dirty_pages_track_marked_ranges() {
        let mut d = DirtyPages::default();
        assert!(d.is_dirty(1000), "a new memory is all dirty");
        d.clean();
        assert!(!d.is_dirty(0));
        d.mark(PAGE_BYTES - 1, PAGE_BYTES + 1);
        assert!(d.is_dirty(0) && d.is_dirty(1) && !d.is_dirty(2));
        d.mark(200 * PAGE_BYTES, 200 * PAGE_BYTES + 1);
        assert!(d.is_dirty(200) && !d.is_dirty(199) && !d.is_dirty(201));
        d.mark(5, 5);
        assert!(!d.is_dirty(5 / PAGE_BYTES + 3));
        d.clean();
        assert!(!d.is_dirty(200));
    }

    #[test]
    fn par_map_keeps_order() {
        let items: Vec<u64> = (0..1000).collect();
        let out = par_map(&items, 7, |x| x * 2);
        assert_eq!(out, items.iter().map(|x| x * 2).collect::<Vec<_>>());
        assert!(par_map(&Vec::<u64>::new(), 4, |x| *x).is_empty());
    }
}
