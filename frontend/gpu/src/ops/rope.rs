//! Rotary position embedding (`shaders/rope.wgsl`), in place, with cos/sin
//! tables built once on the host.

use bytemuck::{Pod, Zeroable};

use crate::context::{check_len, ensure, groups_for, Gpu, Kernel, WORKGROUP};
use crate::error::Result;

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    rows: u32,
    heads: u32,
    head_dim: u32,
    start_pos: u32,
    positions: u32,
    _pad: [u32; 3],
}

/// `cos` and `sin` of `pos * inv_freq[i]` for every position below
/// `positions`, `[positions, head_dim / 2]`, on the GPU.
#[derive(Debug)]
pub struct RopeTables {
    pub positions: usize,
    pub half: usize,
    pub cos: wgpu::Buffer,
    pub sin: wgpu::Buffer,
}

impl RopeTables {
    /// The angle is `f32(pos) * inv_freq[i]` in f32, as in the ONNX graph
    /// (Cast, Mul); its cosine and sine are taken in f64 and rounded.
    pub fn host(inv_freq: &[f32], positions: usize) -> (Vec<f32>, Vec<f32>) {
        let mut cos = Vec::with_capacity(positions * inv_freq.len());
        let mut sin = Vec::with_capacity(positions * inv_freq.len());
        for pos in 0..positions {
            for f in inv_freq {
                let angle = f64::from(pos as f32 * f);
                cos.push(angle.cos() as f32);
                sin.push(angle.sin() as f32);
            }
        }
        (cos, sin)
    }

    pub fn new(gpu: &Gpu, inv_freq: &[f32], positions: usize) -> Result<Self> {
        let (cos, sin) = Self::host(inv_freq, positions);
        Ok(RopeTables {
            positions,
            half: inv_freq.len(),
            cos: gpu.upload("rope cos", &cos)?,
            sin: gpu.upload("rope sin", &sin)?,
        })
    }
}

/// Rotates `rows` rows of `heads` heads of `x` in place; row `r` is at
/// position `start_pos + r`.
#[derive(Debug)]
pub struct Rope {
    kernel: Kernel,
}

impl Rope {
    pub fn new(gpu: &Gpu) -> Self {
        Rope {
            kernel: Kernel::new(gpu, "rope", include_str!("../../shaders/rope.wgsl")),
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub fn encode(
        &self,
        gpu: &Gpu,
        encoder: &mut wgpu::CommandEncoder,
        rows: usize,
        heads: usize,
        head_dim: usize,
        start_pos: usize,
        tables: &RopeTables,
        x: &wgpu::Buffer,
    ) -> Result<()> {
        let op = self.kernel.name;
        ensure(head_dim > 0 && head_dim.is_multiple_of(2), op, || {
            format!("head_dim {head_dim} is not a positive even number")
        })?;
        ensure(tables.half == head_dim / 2, op, || {
            format!("tables for head_dim {}, not {head_dim}", 2 * tables.half)
        })?;
        ensure(start_pos + rows <= tables.positions, op, || {
            format!(
                "positions up to {} but tables for {}",
                start_pos + rows,
                tables.positions
            )
        })?;
        check_len(op, "x", x, rows * heads * head_dim)?;
        let params = Params {
            rows: rows as u32,
            heads: heads as u32,
            head_dim: head_dim as u32,
            start_pos: start_pos as u32,
            positions: tables.positions as u32,
            _pad: [0; 3],
        };
        self.kernel.dispatch(
            gpu,
            encoder,
            &params,
            &[x, &tables.cos, &tables.sin],
            [groups_for(heads * head_dim / 2, WORKGROUP), rows as u64, 1],
        )
    }
}
