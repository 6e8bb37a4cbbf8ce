//! Causal grouped-query attention over the KV cache
//! (`shaders/attention.wgsl`).

use bytemuck::{Pod, Zeroable};

use crate::context::{check_len, ensure, Gpu, Kernel};
use crate::error::Result;
use crate::ops::KvShape;

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    rows: u32,
    heads: u32,
    kv_heads: u32,
    head_dim: u32,
    start_pos: u32,
    capacity: u32,
    scale: f32,
    _pad: u32,
}

/// Query heads and the cache they read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttentionShape {
    pub heads: usize,
    pub kv: KvShape,
}

/// `out[r, h] = softmax(q[r, h] . k[0..=p] * scale) v[0..=p]` with
/// `p = start_pos + r`, query head `h` reading kv head
/// `h / (heads / kv_heads)`.
#[derive(Debug)]
pub struct Attention {
    kernel: Kernel,
}

impl Attention {
    pub fn new(gpu: &Gpu) -> Self {
        Attention {
            kernel: Kernel::new(
                gpu,
                "attention",
                include_str!("../../shaders/attention.wgsl"),
            ),
        }
    }

    /// Values the `scores` scratch buffer needs for `rows` rows.
    pub fn scratch_len(rows: usize, shape: AttentionShape) -> usize {
        rows * shape.heads * shape.kv.capacity
    }

    /// The cache must already hold positions `0..start_pos + rows` (the
    /// keys of these rows included).
    #[allow(clippy::too_many_arguments)]
    pub fn encode(
        &self,
        gpu: &Gpu,
        encoder: &mut wgpu::CommandEncoder,
        rows: usize,
        start_pos: usize,
        shape: AttentionShape,
        q: &wgpu::Buffer,
        k_cache: &wgpu::Buffer,
        v_cache: &wgpu::Buffer,
        scores: &wgpu::Buffer,
        out: &wgpu::Buffer,
    ) -> Result<()> {
        let op = self.kernel.name;
        let kv = shape.kv;
        ensure(
            kv.kv_heads > 0 && shape.heads.is_multiple_of(kv.kv_heads),
            op,
            || format!("{} query heads over {} kv heads", shape.heads, kv.kv_heads),
        )?;
        ensure(kv.head_dim > 0, op, || "head_dim 0".into())?;
        ensure(start_pos + rows <= kv.capacity, op, || {
            format!(
                "positions up to {} in a cache of {}",
                start_pos + rows,
                kv.capacity
            )
        })?;
        let width = shape.heads * kv.head_dim;
        check_len(op, "q", q, rows * width)?;
        check_len(op, "k_cache", k_cache, kv.len())?;
        check_len(op, "v_cache", v_cache, kv.len())?;
        check_len(op, "scores", scores, Self::scratch_len(rows, shape))?;
        check_len(op, "out", out, rows * width)?;
        let params = Params {
            rows: rows as u32,
            heads: shape.heads as u32,
            kv_heads: kv.kv_heads as u32,
            head_dim: kv.head_dim as u32,
            start_pos: start_pos as u32,
            capacity: kv.capacity as u32,
            scale: 1.0 / (kv.head_dim as f32).sqrt(),
            _pad: 0,
        };
        self.kernel.dispatch(
            gpu,
            encoder,
            &params,
            &[q, k_cache, v_cache, scores, out],
            [shape.heads as u64, rows as u64, 1],
        )
    }
}
