//! Stable memory layout: one virtual memory per structure, named here and
//! nowhere else. Ids are never reused.

use ic_stable_structures::memory_manager::{MemoryId, MemoryManager, VirtualMemory};
use ic_stable_structures::DefaultMemoryImpl;

pub type Memory = VirtualMemory<DefaultMemoryImpl>;

/// The task manager's principal (a cell).
pub const CONFIG: MemoryId = MemoryId::new(0);
/// The current assignment (a cell).
pub const ASSIGNMENT: MemoryId = MemoryId::new(1);
/// Verified chunks of the assignment's files, by (file, index).
pub const CHUNKS: MemoryId = MemoryId::new(2);
/// Reports owed to the task manager, from `pre_upgrade` to `post_upgrade`
/// (a cell).
pub const OUTBOX: MemoryId = MemoryId::new(3);

pub fn manager(memory: DefaultMemoryImpl) -> MemoryManager<DefaultMemoryImpl> {
    MemoryManager::init(memory)
}
