//! Stable memory layout: one virtual memory per structure, named here and
//! nowhere else. Ids are never reused; a structure that goes away leaves its
//! id retired.

use ic_stable_structures::memory_manager::{MemoryId, MemoryManager, VirtualMemory};
use ic_stable_structures::DefaultMemoryImpl;

pub type Memory = VirtualMemory<DefaultMemoryImpl>;

/// `Config` (a cell).
pub const CONFIG: MemoryId = MemoryId::new(0);
/// Users by principal.
pub const USERS: MemoryId = MemoryId::new(1);
/// Models (manifests) by name.
pub const MODELS: MemoryId = MemoryId::new(2);
/// Model file chunks by (model id, file, index).
pub const CHUNKS: MemoryId = MemoryId::new(3);
/// Counters (a cell).
pub const META: MemoryId = MemoryId::new(4);
/// Workers by principal.
pub const WORKERS: MemoryId = MemoryId::new(5);
/// Pipelines by id.
pub const PIPELINES: MemoryId = MemoryId::new(6);
/// Jobs by id (finished ones included).
pub const JOBS: MemoryId = MemoryId::new(7);
/// Ids of queued jobs.
pub const QUEUE: MemoryId = MemoryId::new(8);
/// Job and pipeline counters (a cell).
pub const JOB_META: MemoryId = MemoryId::new(9);
/// The worker module for `spawn_workers`, in pieces by index.
pub const WORKER_WASM: MemoryId = MemoryId::new(10);
/// Ids of running jobs.
pub const RUNNING: MemoryId = MemoryId::new(11);
/// Jobs by owner.
pub const USER_JOBS: MemoryId = MemoryId::new(12);
/// Finished jobs by when they ended.
pub const FINISHED: MemoryId = MemoryId::new(13);
/// The global token bucket (a cell).
pub const GLOBAL_BUCKET: MemoryId = MemoryId::new(14);
/// Registration requests waiting for approval.
pub const PENDING_USERS: MemoryId = MemoryId::new(15);

/// The memories of one canister's state.
pub struct Memories {
    manager: MemoryManager<DefaultMemoryImpl>,
}

impl Memories {
    /// Over the canister's stable memory (in the canister) or a fresh
    /// in-heap memory (natively, in tests).
    pub fn new(memory: DefaultMemoryImpl) -> Memories {
        Memories {
            manager: MemoryManager::init(memory),
        }
    }

    pub fn get(&self, id: MemoryId) -> Memory {
        self.manager.get(id)
    }
}
