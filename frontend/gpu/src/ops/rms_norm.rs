//! RMSNorm (`shaders/rms_norm.wgsl`).

use bytemuck::{Pod, Zeroable};

use crate::context::{check_len, ensure, Gpu, Kernel};
use crate::error::Result;

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    rows: u32,
    dim: u32,
    eps: f32,
    _pad: u32,
}

/// `out[row] = x[row] / sqrt(mean(x[row]^2) + eps) * weight`.
#[derive(Debug)]
pub struct RmsNorm {
    kernel: Kernel,
}

impl RmsNorm {
    pub fn new(gpu: &Gpu) -> Self {
        RmsNorm {
            kernel: Kernel::new(gpu, "rms_norm", include_str!("../../shaders/rms_norm.wgsl")),
        }
    }

    /// Normalises `rows` rows of `dim` values of `x` into `out` (a
    /// different buffer).
    #[allow(clippy::too_many_arguments)]
    pub fn encode(
        &self,
        gpu: &Gpu,
        encoder: &mut wgpu::CommandEncoder,
        rows: usize,
        dim: usize,
        eps: f32,
        x: &wgpu::Buffer,
        weight: &wgpu::Buffer,
        out: &wgpu::Buffer,
    ) -> Result<()> {
        let op = self.kernel.name;
        ensure(dim > 0, op, || "zero-width rows".into())?;
        ensure(eps.is_finite() && eps >= 0.0, op, || format!("eps {eps}"))?;
        check_len(op, "x", x, rows * dim)?;
        check_len(op, "weight", weight, dim)?;
        check_len(op, "out", out, rows * dim)?;
        let params = Params {
            rows: rows as u32,
            dim: dim as u32,
            eps,
            _pad: 0,
        };
        self.kernel.dispatch(
            gpu,
            encoder,
            &params,
            &[x, weight, out],
            [rows as u64, 1, 1],
        )
    }
}
