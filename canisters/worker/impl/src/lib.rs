//! The `worker` canister.
//!
//! A worker holds one or more consecutive stages of a model: their chunks,
//! pulled from the task manager and verified, in stable memory; the stages
//! loaded in heap on the engine's own llama forward pass, `f32` or 8-bit
//! (rebuilt after an upgrade), whose KV caches grow in place. The worker holding
//! stage 0 drives jobs: it prefills the prompt, then produces one token per
//! update message, continuing by a call to itself, and sends each step's
//! hidden states through its downstream peers.
//!
//! `run_job` and `load_stages` answer at once; the job or load then runs
//! from a timer ([`tasks`]) and its end is reported to the task manager
//! (`job_finished`, `worker_ready`) by bounded-wait calls, retried while
//! they fail. Every call the worker makes has a deadline
//! (`worker_api::protocol`).
//!
//! Endpoints are thin wrappers, one per file under [`updates`],
//! [`queries`] and [`lifecycle`]; the logic is plain Rust in [`model`],
//! tested natively on the bundled tiny model.

pub mod guards;
pub mod lifecycle;
pub mod memory;
pub mod model;
pub mod queries;
pub mod state;
pub mod tasks;
pub mod updates;

use worker_api::*;

ic_cdk::export_candid!();

#[cfg(test)]
mod tests {
    /// The checked-in `.did` is what the code exports. Regenerate with
    /// `UPDATE_DID=1 cargo test -p worker candid`.
    #[test]
    fn candid_interface_is_checked_in() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../api/worker.did");
        did_check::assert_checked_in(&path, &super::__export_service(), "worker");
        let released =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../api/released/worker.did");
        did_check::assert_compatible(&released, &super::__export_service(), "worker");
    }
}
