//! Appending keys or values to a layer's KV cache on the GPU
//! (`shaders/kv_write.wgsl`).

use bytemuck::{Pod, Zeroable};

use crate::context::{check_len, ensure, groups_for, Gpu, Kernel, WORKGROUP};
use crate::error::Result;

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    rows: u32,
    kv_heads: u32,
    head_dim: u32,
    start_pos: u32,
    capacity: u32,
    _pad: [u32; 3],
}

/// A cache laid out `[kv_heads, capacity, head_dim]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KvShape {
    pub kv_heads: usize,
    pub head_dim: usize,
    pub capacity: usize,
}

impl KvShape {
    /// Values in one layer's key (or value) cache.
    pub fn len(&self) -> usize {
        self.kv_heads * self.capacity * self.head_dim
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// `cache[h, start_pos + r] = src[r, h]` for `rows` rows.
#[derive(Debug)]
pub struct KvWrite {
    kernel: Kernel,
}

impl KvWrite {
    pub fn new(gpu: &Gpu) -> Self {
        KvWrite {
            kernel: Kernel::new(gpu, "kv_write", include_str!("../../shaders/kv_write.wgsl")),
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub fn encode(
        &self,
        gpu: &Gpu,
        encoder: &mut wgpu::CommandEncoder,
        rows: usize,
        start_pos: usize,
        shape: KvShape,
        src: &wgpu::Buffer,
        cache: &wgpu::Buffer,
    ) -> Result<()> {
        let op = self.kernel.name;
        ensure(start_pos + rows <= shape.capacity, op, || {
            format!(
                "positions up to {} in a cache of {}",
                start_pos + rows,
                shape.capacity
            )
        })?;
        let width = shape.kv_heads * shape.head_dim;
        check_len(op, "src", src, rows * width)?;
        check_len(op, "cache", cache, shape.len())?;
        let params = Params {
            rows: rows as u32,
            kv_heads: shape.kv_heads as u32,
            head_dim: shape.head_dim as u32,
            start_pos: start_pos as u32,
            capacity: shape.capacity as u32,
            _pad: [0; 3],
        };
        self.kernel.dispatch(
            gpu,
            encoder,
            &params,
            &[src, cache],
            [groups_for(width, WORKGROUP), rows as u64, 1],
        )
    }
}
