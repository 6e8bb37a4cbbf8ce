//! Embedding gather (`shaders/embedding.wgsl`).

use bytemuck::{Pod, Zeroable};

use crate::context::{check_len, ensure, groups_for, Gpu, Kernel, WORKGROUP};
use crate::error::Result;

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    rows: u32,
    hidden: u32,
    vocab: u32,
    _pad: u32,
}

/// `out[row] = table[ids[row]]`, the table `[vocab, hidden]`.
#[derive(Debug)]
pub struct Embedding {
    kernel: Kernel,
}

impl Embedding {
    pub fn new(gpu: &Gpu) -> Self {
        Embedding {
            kernel: Kernel::new(
                gpu,
                "embedding",
                include_str!("../../shaders/embedding.wgsl"),
            ),
        }
    }

    /// Gathers `rows` rows. Ids are u32 values; one outside the vocabulary
    /// gives a zero row (callers check ids first).
    #[allow(clippy::too_many_arguments)]
    pub fn encode(
        &self,
        gpu: &Gpu,
        encoder: &mut wgpu::CommandEncoder,
        rows: usize,
        hidden: usize,
        vocab: usize,
        ids: &wgpu::Buffer,
        table: &wgpu::Buffer,
        out: &wgpu::Buffer,
    ) -> Result<()> {
        let op = self.kernel.name;
        ensure(hidden > 0 && vocab > 0, op, || "empty table".into())?;
        check_len(op, "ids", ids, rows)?;
        check_len(op, "table", table, vocab * hidden)?;
        check_len(op, "out", out, rows * hidden)?;
        let params = Params {
            rows: rows as u32,
            hidden: hidden as u32,
            vocab: vocab as u32,
            _pad: 0,
        };
        self.kernel.dispatch(
            gpu,
            encoder,
            &params,
            &[ids, table, out],
            [groups_for(hidden, WORKGROUP), rows as u64, 1],
        )
    }
}
