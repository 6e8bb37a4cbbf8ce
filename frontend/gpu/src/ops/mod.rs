//! The decoder's ops. Each is a struct holding its compiled kernel, a
//! uniform struct matching its shader's `Params`, and an `encode` method
//! that checks shapes and buffer sizes before recording a dispatch.
//! Activations are row-major `[rows, width]` f32 buffers.

mod add;
mod attention;
mod embedding;
mod kv_write;
mod linear;
mod lm_head;
mod rms_norm;
mod rope;
mod swiglu;

pub use add::Add;
pub use attention::{Attention, AttentionShape};
pub use embedding::Embedding;
pub use kv_write::{KvShape, KvWrite};
pub use linear::Linear;
pub use lm_head::LmHead;
pub use rms_norm::RmsNorm;
pub use rope::{Rope, RopeTables};
pub use swiglu::SwiGlu;

use crate::context::{groups_for, WORKGROUP};

/// A grid covering `len` elements with 64-thread workgroups along x and,
/// past the per-dimension limit, rows along y. Returns (groups, the number
/// of elements one grid row covers).
pub(crate) fn elementwise_grid(len: usize, max_per_dim: u32) -> ([u64; 3], u32) {
    let total = groups_for(len, WORKGROUP).max(1);
    let x = total.min(u64::from(max_per_dim));
    let y = total.div_ceil(x);
    ([x, y, 1], (x as u32) * WORKGROUP)
}
