//! Linear layer without bias (`shaders/linear.wgsl`): the Q/K/V/O and MLP
//! projections.

use bytemuck::{Pod, Zeroable};

use crate::context::{check_len, ensure, groups_for, Gpu, Kernel, WORKGROUP};
use crate::error::Result;

/// Rows and columns one invocation computes.
const ROWS_PER_THREAD: u32 = 4;
const COLS_PER_THREAD: u32 = 4;

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    rows: u32,
    k: u32,
    n: u32,
    _pad: u32,
}

/// `y[rows, n] = x[rows, k] * w[k, n]`, the weight stored `[in, out]`;
/// `n` must be a multiple of 4 (every llama projection's is).
#[derive(Debug)]
pub struct Linear {
    kernel: Kernel,
}

impl Linear {
    pub fn new(gpu: &Gpu) -> Self {
        Linear {
            kernel: Kernel::new(gpu, "linear", include_str!("../../shaders/linear.wgsl")),
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub fn encode(
        &self,
        gpu: &Gpu,
        encoder: &mut wgpu::CommandEncoder,
        rows: usize,
        k: usize,
        n: usize,
        x: &wgpu::Buffer,
        w: &wgpu::Buffer,
        y: &wgpu::Buffer,
    ) -> Result<()> {
        let op = self.kernel.name;
        ensure(k > 0 && n > 0 && n.is_multiple_of(4), op, || {
            format!("weight [{k}, {n}]: the output width must be a positive multiple of 4")
        })?;
        check_len(op, "x", x, rows * k)?;
        check_len(op, "w", w, k * n)?;
        check_len(op, "y", y, rows * n)?;
        let params = Params {
            rows: rows as u32,
            k: k as u32,
            n: n as u32,
            _pad: 0,
        };
        self.kernel.dispatch(
            gpu,
            encoder,
            &params,
            &[x, w, y],
            [
                groups_for(n / COLS_PER_THREAD as usize, WORKGROUP),
                groups_for(rows, ROWS_PER_THREAD),
                1,
            ],
        )
    }
}
