//! Tied LM head (`shaders/lm_head.wgsl`): the embedding table as the output
//! projection.

use bytemuck::{Pod, Zeroable};

use crate::context::{check_len, ensure, groups_for, Gpu, Kernel, WORKGROUP};
use crate::error::Result;

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    rows: u32,
    first_row: u32,
    hidden: u32,
    vocab: u32,
}

/// `logits[r] = embed * x[first_row + r]` for `rows` rows; `hidden` must
/// be a multiple of 4.
#[derive(Debug)]
pub struct LmHead {
    kernel: Kernel,
}

impl LmHead {
    pub fn new(gpu: &Gpu) -> Self {
        LmHead {
            kernel: Kernel::new(gpu, "lm_head", include_str!("../../shaders/lm_head.wgsl")),
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub fn encode(
        &self,
        gpu: &Gpu,
        encoder: &mut wgpu::CommandEncoder,
        first_row: usize,
        rows: usize,
        hidden: usize,
        vocab: usize,
        x: &wgpu::Buffer,
        embed: &wgpu::Buffer,
        logits: &wgpu::Buffer,
    ) -> Result<()> {
        let op = self.kernel.name;
        ensure(
            hidden > 0 && vocab > 0 && hidden.is_multiple_of(4),
            op,
            || format!("table [{vocab}, {hidden}]: hidden must be a positive multiple of 4"),
        )?;
        check_len(op, "x", x, (first_row + rows) * hidden)?;
        check_len(op, "embed", embed, vocab * hidden)?;
        check_len(op, "logits", logits, rows * vocab)?;
        let params = Params {
            rows: rows as u32,
            first_row: first_row as u32,
            hidden: hidden as u32,
            vocab: vocab as u32,
        };
        self.kernel.dispatch(
            gpu,
            encoder,
            &params,
            &[x, embed, logits],
            [groups_for(vocab, WORKGROUP), rows as u64, 1],
        )
    }
}
