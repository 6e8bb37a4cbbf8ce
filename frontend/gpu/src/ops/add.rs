//! Residual add (`shaders/add.wgsl`).

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

/// `x += y` over `len` values.
#[derive(Debug)]
pub struct Add {
    kernel: Kernel,
}

impl Add {
    pub fn new(gpu: &Gpu) -> Self {
        Add {
            kernel: Kernel::new(gpu, "add", include_str!("../../shaders/add.wgsl")),
        }
    }

    pub fn encode(
        &self,
        gpu: &Gpu,
        encoder: &mut wgpu::CommandEncoder,
        len: usize,
        x: &wgpu::Buffer,
        y: &wgpu::Buffer,
    ) -> Result<()> {
        let op = self.kernel.name;
        check_len(op, "x", x, len)?;
        check_len(op, "y", y, len)?;
        let (groups, row_stride) = elementwise_grid(
            len,
            gpu.device.limits().max_compute_workgroups_per_dimension,
        );
        let params = Params {
            len: len as u32,
            row_stride,
            _pad: [0; 2],
        };
        self.kernel.dispatch(gpu, encoder, &params, &[x, y], groups)
    }
}
