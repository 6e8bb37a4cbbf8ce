//! SwiGLU gate (`shaders/swiglu.wgsl`).

use bytemuck::{Pod, Zeroable};

use crate::context::{check_len, Gpu, Kernel};
use crate::error::Result;
use crate::ops::elementwise_grid;

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    len: u32,
    row_stride: u32,
    _pad: [u32; 2],
}

/// `out = silu(gate) * up` over `len` values.
#[derive(Debug)]
pub struct SwiGlu {
    kernel: Kernel,
}

impl SwiGlu {
    pub fn new(gpu: &Gpu) -> Self {
        SwiGlu {
            kernel: Kernel::new(gpu, "swiglu", include_str!("../../shaders/swiglu.wgsl")),
        }
    }

    pub fn encode(
        &self,
        gpu: &Gpu,
        encoder: &mut wgpu::CommandEncoder,
        len: usize,
        gate: &wgpu::Buffer,
        up: &wgpu::Buffer,
        out: &wgpu::Buffer,
    ) -> Result<()> {
        let op = self.kernel.name;
        check_len(op, "gate", gate, len)?;
        check_len(op, "up", up, len)?;
        check_len(op, "out", out, len)?;
        let (groups, row_stride) = elementwise_grid(
            len,
            gpu.device.limits().max_compute_workgroups_per_dimension,
        );
        let params = Params {
            len: len as u32,
            row_stride,
            _pad: [0; 2],
        };
        self.kernel
            .dispatch(gpu, encoder, &params, &[gate, up, out], groups)
    }
}
