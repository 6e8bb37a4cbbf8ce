//! `load_step` (update; the worker itself): one phase of loading the
//! assigned stages onto the engine's own forward pass (a q8 stage: read in
//! place; an ONNX `f32` stage: its weights read, then converted), one
//! message each.

use crate::WorkerError;

/// The load's epoch (a newer assignment cancels an older load).
pub type Args = u64;

crate::named_result!(
    /// `true` once every stage is loaded.
    LoadStepResult,
    bool,
    WorkerError
);

pub type Response = LoadStepResult;
