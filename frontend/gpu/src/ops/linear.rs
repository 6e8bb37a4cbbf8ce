//! Linear layer without bias (`shaders/linear.wgsl`): the Q/K/V/O and MLP
//! projections.

use bytemuck::{Pod, Zeroable};

use crate::context::{check_len, ensure, groups_for, Gpu, Kernel, WORKGROUP};
use crate::error::Result;

/// Rows one invocation computes (`ROWS` in the shader).
const ROWS_PER_THREAD: u32 = 4;

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    rows: u32,
    k: u32,
    n: u32,
    _pad: u32,
}

/// `y[rows, n] = x[rows, k] * w[k, n]`, the weight stored `[in, out]`.
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
        ensure(k > 0 && n > 0, op, || format!("weight [{k}, {n}]"))?;
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
                groups_for(n, WORKGROUP),
                groups_for(rows, ROWS_PER_THREAD),
                1,
            ],
        )
    }
}
