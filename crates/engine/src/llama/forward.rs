//! The forward pass of one llama stage, with `f32` or 8-bit weights.
//!
//! [`LlamaStage`] holds a stage's weights in the layout its kernels read:
//! every matrix `[out, in]`, row after row, either `f32` ([`Matrix::F32`],
//! the reference) or quantised per block of 32 ([`Matrix::Q8`]). A call runs
//! the new positions of one sequence:
//!
//! * the KV cache ([`LlamaKv`]) of each layer grows in place: the new keys
//!   and values are appended, nothing is copied;
//! * matrix products take every new position at once (prefill is a
//!   matrix–matrix product: each weight row is read once per call, not once
//!   per token);
//! * attention reads the cache where it lies; the causal mask is the loop
//!   bound, so no score past the query is ever computed;
//! * the head runs on the positions whose logits are asked for only.
//!
//! It computes what `scripts/build_llama_onnx.py` exports (RMS norm, rotary
//! embedding "rotate half", grouped-query attention, SiLU MLP, tied or
//! separate head), so its logits match tract's on the same stage.

use std::sync::Arc;

use super::kernels::{self, quantize_blocks, BLOCK};
use super::weights::{F32Tensor, LmHead, StageWeights};
use crate::error::{Error, Result};
use crate::manifest::{ModelConfig, StageMeta};
use crate::stage::{check_stage_data, HiddenStates, Logits, StageData, StageInput, StageOutput};

/// Tokens the int8 matrix product takes at once (eight or four rows by four
/// tokens: see [`kernels::dot_q8_8x4`] and [`kernels::dot_q8_4x4`]). A
/// prompt chunk of a multiple of this many tokens runs entirely on those
/// kernels.
pub const TOKEN_BLOCK: usize = 4;

/// The operands of an int8 matrix product's prefill tiles.
struct Tiles<'a> {
    quants: &'a [i8],
    scales: &'a [f32],
    xq: &'a [i16],
    xd: &'a [f32],
    cols: usize,
    rows: usize,
    /// Tokens taken in tiles: a multiple of [`TOKEN_BLOCK`].
    tokens: usize,
}

impl Tiles<'_> {
    /// `kernel`, a tile of `R` rows by [`TOKEN_BLOCK`] tokens, over the
    /// rows of `range` (a multiple of `R` of them) and every block of
    /// tokens, into `y` (`tokens × rows`).
    #[inline(always)]
    fn run<const R: usize>(
        &self,
        range: std::ops::Range<usize>,
        y: &mut [f32],
        kernel: impl Fn(&[i8], &[f32], &[i16], &[f32], usize) -> [[f32; TOKEN_BLOCK]; R],
    ) {
        let (cols, blocks) = (self.cols, self.cols / BLOCK);
        for o in range.step_by(R) {
            let w = &self.quants[o * cols..(o + R) * cols];
            let dw = &self.scales[o * blocks..(o + R) * blocks];
            for t in (0..self.tokens).step_by(TOKEN_BLOCK) {
                let out = kernel(
                    w,
                    dw,
                    &self.xq[t * cols..(t + TOKEN_BLOCK) * cols],
                    &self.xd[t * blocks..(t + TOKEN_BLOCK) * blocks],
                    cols,
                );
                for (r, row) in out.iter().enumerate() {
                    for (j, &v) in row.iter().enumerate() {
                        y[(t + j) * self.rows + o + r] = v;
                    }
                }
            }
        }
    }
}

/// How a [`LlamaStage`] stores its matrices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightFormat {
    /// `f32`, as exported.
    F32,
    /// 8-bit, one `f32` scale per block of 32 values of a row.
    Q8,
}

/// 8-bit quants, owned or shared with the stage file they were read from
/// (a q8 stage is not copied out of its file: see [`super::q8file`]).
#[derive(Clone)]
pub struct Quants {
    buf: Arc<Vec<u8>>,
    start: usize,
    len: usize,
}

impl Quants {
    /// Quants of their own.
    pub fn owned(quants: Vec<i8>) -> Self {
        let len = quants.len();
        Quants {
            buf: Arc::new(quants.into_iter().map(|q| q as u8).collect()),
            start: 0,
            len,
        }
    }

    /// `len` quants at `start` of a shared buffer; `None` if out of bounds.
    pub fn shared(buf: Arc<Vec<u8>>, start: usize, len: usize) -> Option<Self> {
        (start.checked_add(len)? <= buf.len()).then_some(Quants { buf, start, len })
    }

    /// The quants as signed bytes.
    #[inline]
    pub fn as_slice(&self) -> &[i8] {
        let bytes = &self.buf[self.start..self.start + self.len];
        // SAFETY: `i8` and `u8` have the same size and alignment, and every
        // bit pattern is valid for both.
        unsafe { std::slice::from_raw_parts(bytes.as_ptr().cast::<i8>(), bytes.len()) }
    }
}

impl PartialEq for Quants {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl std::fmt::Debug for Quants {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Quants({} values)", self.len)
    }
}

/// The `f32` scales of an 8-bit matrix, owned or read in place from the
/// stage file they came from (little-endian, 4-byte aligned there; a
/// buffer that is not gets its scales copied).
#[derive(Clone)]
pub struct Scales(ScalesRepr);

#[derive(Clone)]
enum ScalesRepr {
    Owned(Vec<f32>),
    Shared {
        buf: Arc<Vec<u8>>,
        start: usize,
        len: usize,
    },
}

impl Scales {
    /// Scales of their own.
    pub fn owned(scales: Vec<f32>) -> Self {
        Scales(ScalesRepr::Owned(scales))
    }

    /// `len` little-endian `f32` at byte `start` of a shared buffer, used in
    /// place where the target is little-endian and they are aligned;
    /// `None` if out of bounds.
    pub fn shared(buf: &Arc<Vec<u8>>, start: usize, len: usize) -> Option<Self> {
        let bytes = buf.get(start..start.checked_add(len.checked_mul(4)?)?)?;
        let in_place = cfg!(target_endian = "little") && bytes.as_ptr().align_offset(4) == 0;
        Some(Scales(if in_place {
            ScalesRepr::Shared {
                buf: Arc::clone(buf),
                start,
                len,
            }
        } else {
            ScalesRepr::Owned(
                bytes
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect(),
            )
        }))
    }

    /// Whether the scales are read in place from a shared buffer.
    pub fn is_shared(&self) -> bool {
        matches!(self.0, ScalesRepr::Shared { .. })
    }

    /// The scales.
    #[inline]
    pub fn as_slice(&self) -> &[f32] {
        match &self.0 {
            ScalesRepr::Owned(v) => v,
            ScalesRepr::Shared { buf, start, len } => {
                let bytes = &buf[*start..*start + *len * 4];
                // SAFETY: `shared` checked that these bytes are 4-byte
                // aligned and in bounds, and the target little-endian; every
                // bit pattern is a valid `f32`; the buffer is never mutated
                // while shared (it sits behind an `Arc`).
                unsafe { std::slice::from_raw_parts(bytes.as_ptr().cast::<f32>(), *len) }
            }
        }
    }

    /// Number of scales.
    pub fn len(&self) -> usize {
        match &self.0 {
            ScalesRepr::Owned(v) => v.len(),
            ScalesRepr::Shared { len, .. } => *len,
        }
    }

    /// Whether there are no scales.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl PartialEq for Scales {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl std::fmt::Debug for Scales {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Scales({} values)", self.len())
    }
}

/// A matrix quantised per block of [`BLOCK`] values along its rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Q8Matrix {
    pub rows: usize,
    pub cols: usize,
    /// `rows × cols` quantised values, row-major.
    pub quants: Quants,
    /// `rows × cols / 32` scales, row-major.
    pub scales: Scales,
}

impl Q8Matrix {
    /// Quantises a row-major `rows × cols` matrix (`cols` a multiple of 32).
    pub fn quantize(rows: usize, cols: usize, values: &[f32]) -> Result<Self> {
        check_block_multiple(cols)?;
        let mut quants = vec![0i8; rows * cols];
        let mut scales = vec![0.0f32; rows * cols / BLOCK];
        quantize_blocks(&values[..rows * cols], cols, &mut quants, &mut scales);
        Ok(Q8Matrix {
            rows,
            cols,
            quants: Quants::owned(quants),
            scales: Scales::owned(scales),
        })
    }

    /// Row `r`'s quants and scales.
    #[inline]
    fn row(&self, r: usize) -> (&[i8], &[f32]) {
        let blocks = self.cols / BLOCK;
        (
            &self.quants.as_slice()[r * self.cols..(r + 1) * self.cols],
            &self.scales.as_slice()[r * blocks..(r + 1) * blocks],
        )
    }

    /// Dequantised row `r` into `out`.
    fn dequantize_row(&self, r: usize, out: &mut [f32]) {
        let (q, d) = self.row(r);
        for (c, (o, &q)) in out.iter_mut().zip(q).enumerate() {
            *o = f32::from(q) * d[kernels::block_of(c, self.cols)];
        }
    }
}

fn check_block_multiple(cols: usize) -> Result<()> {
    if cols.is_multiple_of(BLOCK) {
        Ok(())
    } else {
        Err(Error::ShapeMismatch {
            what: "8-bit matrix".into(),
            expected: format!("rows of a multiple of {BLOCK} values"),
            found: format!("{cols} values"),
        })
    }
}

/// A matrix `[out, in]` of a linear layer.
#[derive(Debug, Clone, PartialEq)]
pub enum Matrix {
    F32 {
        rows: usize,
        cols: usize,
        values: Vec<f32>,
    },
    Q8(Q8Matrix),
}

impl Matrix {
    /// From a `[rows, cols]` tensor, in `format`.
    pub(super) fn from_rows(tensor: F32Tensor, format: WeightFormat) -> Result<Self> {
        let (rows, cols) = dims2(&tensor)?;
        Ok(match format {
            WeightFormat::F32 => Matrix::F32 {
                rows,
                cols,
                values: tensor.data,
            },
            WeightFormat::Q8 => Matrix::Q8(Q8Matrix::quantize(rows, cols, &tensor.data)?),
        })
    }

    /// From an ONNX `[in, out]` tensor (transposed to `[out, in]`).
    fn from_in_out(tensor: F32Tensor, format: WeightFormat) -> Result<Self> {
        let (cols, rows) = dims2(&tensor)?;
        let mut values = vec![0.0f32; rows * cols];
        for (i, row) in tensor.data.chunks_exact(rows).enumerate() {
            for (o, &v) in row.iter().enumerate() {
                values[o * cols + i] = v;
            }
        }
        drop(tensor);
        Self::from_rows(
            F32Tensor {
                shape: vec![rows, cols],
                data: values,
            },
            format,
        )
    }

    /// How the matrix is stored.
    pub fn format(&self) -> WeightFormat {
        match self {
            Matrix::F32 { .. } => WeightFormat::F32,
            Matrix::Q8(_) => WeightFormat::Q8,
        }
    }

    /// Output size.
    pub fn rows(&self) -> usize {
        match self {
            Matrix::F32 { rows, .. } => *rows,
            Matrix::Q8(m) => m.rows,
        }
    }

    /// Input size.
    pub fn cols(&self) -> usize {
        match self {
            Matrix::F32 { cols, .. } => *cols,
            Matrix::Q8(m) => m.cols,
        }
    }

    /// Bytes of weight data held.
    pub fn size_bytes(&self) -> usize {
        match self {
            Matrix::F32 { values, .. } => values.len() * 4,
            Matrix::Q8(m) => m.quants.len + m.scales.len() * 4,
        }
    }

    /// `y[t] = W · x[t]` for the `n` rows of `x` (`n × cols`) into `y`
    /// (`n × rows`). An 8-bit matrix reads the activations quantised in
    /// `scratch` (see [`Scratch::quantize`]): quantised once, they serve
    /// every matrix that reads the same input.
    fn matmul(&self, x: &[f32], n: usize, y: &mut [f32], scratch: &Scratch) {
        let (rows, cols) = (self.rows(), self.cols());
        match self {
            Matrix::F32 { values, .. } => {
                for (o, w) in values.chunks_exact(cols).enumerate() {
                    for t in 0..n {
                        y[t * rows + o] = kernels::dot_f32(w, &x[t * cols..(t + 1) * cols]);
                    }
                }
            }
            Matrix::Q8(m) => {
                let blocks = cols / BLOCK;
                debug_assert_eq!(scratch.quants.len(), n * cols);
                let quants = m.quants.as_slice();
                let scales = m.scales.as_slice();
                let (xq, xd) = (&scratch.quants[..], &scratch.scales[..]);
                // Blocks of four tokens (prefill) take eight rows at once,
                // then four for a remainder of four: each weight is loaded
                // once per four tokens, each activation once per eight
                // (or four) rows. The other tokens (decoding) take four
                // rows by one token: each activation loaded once per four
                // rows.
                let (rows8, rows4) = (rows / 8 * 8, rows / 4 * 4);
                let n4 = n / TOKEN_BLOCK * TOKEN_BLOCK;
                if n4 > 0 {
                    let tile = Tiles {
                        quants,
                        scales,
                        xq,
                        xd,
                        cols,
                        rows,
                        tokens: n4,
                    };
                    tile.run(0..rows8, &mut *y, kernels::dot_q8_8x4);
                    tile.run(rows8..rows4, &mut *y, kernels::dot_q8_4x4);
                }
                for t in n4..n {
                    let (x, dx) = (
                        &xq[t * cols..(t + 1) * cols],
                        &xd[t * blocks..(t + 1) * blocks],
                    );
                    let y = &mut y[t * rows..(t + 1) * rows];
                    for o in (0..rows4).step_by(4) {
                        let out = kernels::dot_q8_4x1(
                            &quants[o * cols..(o + 4) * cols],
                            &scales[o * blocks..(o + 4) * blocks],
                            x,
                            dx,
                            cols,
                        );
                        y[o..o + 4].copy_from_slice(&out);
                    }
                }
                // Rows past the last four, for every token.
                for t in 0..n {
                    for o in rows4..rows {
                        y[t * rows + o] = kernels::dot_q8(
                            &quants[o * cols..(o + 1) * cols],
                            &scales[o * blocks..(o + 1) * blocks],
                            &xq[t * cols..(t + 1) * cols],
                            &xd[t * blocks..(t + 1) * blocks],
                        );
                    }
                }
            }
        }
    }

    /// Row `r` (an embedding lookup) into `out`.
    fn row_into(&self, r: usize, out: &mut [f32]) {
        match self {
            Matrix::F32 { values, cols, .. } => {
                out.copy_from_slice(&values[r * cols..(r + 1) * cols]);
            }
            Matrix::Q8(m) => m.dequantize_row(r, out),
        }
    }
}

fn dims2(tensor: &F32Tensor) -> Result<(usize, usize)> {
    match tensor.shape[..] {
        [a, b] if a * b == tensor.data.len() => Ok((a, b)),
        _ => Err(Error::ShapeMismatch {
            what: "weight matrix".into(),
            expected: "a 2-D tensor".into(),
            found: format!("shape {:?} with {} values", tensor.shape, tensor.data.len()),
        }),
    }
}

/// Quantised activations, reused between matrix products.
#[derive(Debug, Default)]
struct Scratch {
    quants: Vec<i16>,
    scales: Vec<f32>,
}

impl Scratch {
    /// Quantises the rows of `cols` values of `x` for the 8-bit matrices
    /// about to read them (nothing for `f32` weights).
    fn quantize(&mut self, x: &[f32], cols: usize, format: WeightFormat) {
        if format == WeightFormat::Q8 {
            self.quants.resize(x.len(), 0);
            self.scales.resize(x.len() / BLOCK, 0.0);
            kernels::quantize_activations(x, cols, &mut self.quants, &mut self.scales);
        }
    }
}

/// One decoder layer, matrices `[out, in]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Layer {
    pub input_layernorm: Vec<f32>,
    pub q_proj: Matrix,
    pub k_proj: Matrix,
    pub v_proj: Matrix,
    pub o_proj: Matrix,
    pub post_attention_layernorm: Vec<f32>,
    pub gate_proj: Matrix,
    pub up_proj: Matrix,
    pub down_proj: Matrix,
}

impl Layer {
    /// The seven matrices: q, k, v, o, gate, up, down.
    pub fn matrices(&self) -> [&Matrix; 7] {
        [
            &self.q_proj,
            &self.k_proj,
            &self.v_proj,
            &self.o_proj,
            &self.gate_proj,
            &self.up_proj,
            &self.down_proj,
        ]
    }
}

/// The output projection.
#[derive(Debug, Clone, PartialEq)]
pub enum Head {
    /// The embedding matrix (`[vocab, hidden]` is already `[out, in]`).
    Tied,
    Separate(Matrix),
}

/// Sizes of the model a stage belongs to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Dims {
    pub hidden: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    pub intermediate: usize,
    pub vocab: usize,
    pub eps: f32,
}

impl Dims {
    /// The sizes of `config`, checked for what the forward pass needs.
    pub(super) fn new(config: &ModelConfig) -> Result<Self> {
        let dims = Dims {
            hidden: config.hidden_size,
            heads: config.num_attention_heads,
            kv_heads: config.num_kv_heads,
            head_dim: config.head_dim,
            intermediate: config.intermediate_size,
            vocab: config.vocab_size,
            eps: config.rms_norm_eps as f32,
        };
        if dims.kv_heads == 0 || !dims.heads.is_multiple_of(dims.kv_heads) {
            return Err(Error::InvalidManifest(format!(
                "num_attention_heads {} is not a multiple of num_kv_heads {}",
                dims.heads, dims.kv_heads
            )));
        }
        Ok(dims)
    }
}

/// A stage ready to run: its weights in the kernels' layout.
#[derive(Debug, Clone, PartialEq)]
pub struct LlamaStage {
    pub(super) meta: StageMeta,
    pub(super) dims: Dims,
    pub(super) format: WeightFormat,
    pub(super) embed_tokens: Option<Matrix>,
    pub(super) layers: Vec<Layer>,
    pub(super) norm: Option<Vec<f32>>,
    pub(super) head: Option<Head>,
    pub(super) rope_inv_freq: Vec<f32>,
}

/// The KV cache of one sequence through a [`LlamaStage`]: per layer, keys
/// and values of every position, `[position][kv_head][head_dim]`, appended
/// in place.
#[derive(Debug, Clone, PartialEq)]
pub struct LlamaKv {
    /// `(keys, values)` per layer.
    layers: Vec<(Vec<f32>, Vec<f32>)>,
    positions: usize,
    /// Values per position in each of `keys` and `values`.
    width: usize,
}

impl LlamaKv {
    /// Number of positions held.
    pub fn positions(&self) -> usize {
        self.positions
    }

    /// Number of layers held.
    pub fn num_layers(&self) -> usize {
        self.layers.len()
    }

    /// Bytes of key/value data held.
    pub fn size_bytes(&self) -> usize {
        self.layers
            .iter()
            .map(|(k, v)| (k.len() + v.len()) * 4)
            .sum()
    }

    /// Reserves room for `positions` positions in all (those held included)
    /// in every layer's keys and values, at once and exactly: appending up
    /// to that many never moves the cache. Without it, the buffers grow as
    /// a `Vec` does (doubling: each growth copies what is held). A cache
    /// that holds as much already is left as it is.
    pub fn reserve(&mut self, positions: usize) -> Result<()> {
        let values = positions.saturating_mul(self.width);
        let buffers = 2 * self.layers.len();
        let out_of_memory = || Error::OutOfMemory {
            what: format!("a KV cache of {positions} positions"),
            bytes: values.saturating_mul(4).saturating_mul(buffers),
        };
        for (k, v) in &mut self.layers {
            for buf in [k, v] {
                let more = values.saturating_sub(buf.len());
                buf.try_reserve_exact(more).map_err(|_| out_of_memory())?;
            }
        }
        Ok(())
    }

    /// Positions the cache holds room for: appending up to this many in all
    /// never moves it.
    pub fn capacity(&self) -> usize {
        self.layers
            .iter()
            .map(|(k, v)| k.capacity().min(v.capacity()))
            .min()
            .unwrap_or(0)
            .checked_div(self.width)
            .unwrap_or(0)
    }

    /// Where each layer's keys and values lie in memory (keys, values, in
    /// layer order): a diagnostic, to check that the cache is appended in
    /// place.
    pub fn buffer_addresses(&self) -> Vec<usize> {
        self.layers
            .iter()
            .flat_map(|(k, v)| [k.as_ptr() as usize, v.as_ptr() as usize])
            .collect()
    }

    /// Forgets every position from `positions` on (no-op if it holds fewer).
    pub fn truncate(&mut self, positions: usize) {
        if positions < self.positions {
            for (k, v) in &mut self.layers {
                k.truncate(positions * self.width);
                v.truncate(positions * self.width);
            }
            self.positions = positions;
        }
    }
}

impl LlamaStage {
    /// Takes the weights read for stage `meta` into the kernels' layout,
    /// quantising the matrices if `format` is [`WeightFormat::Q8`]. Each
    /// `f32` matrix is freed once converted.
    pub fn from_weights(
        weights: StageWeights,
        config: &ModelConfig,
        meta: &StageMeta,
        format: WeightFormat,
    ) -> Result<Self> {
        let dims = Dims::new(config)?;
        let StageWeights {
            embed_tokens,
            layers: layer_weights,
            norm,
            lm_head,
            rope_inv_freq,
            ..
        } = weights;
        let mut layers = Vec::with_capacity(layer_weights.len());
        for l in layer_weights {
            let m = |t| Matrix::from_in_out(t, format);
            layers.push(Layer {
                input_layernorm: l.input_layernorm.data,
                q_proj: m(l.q_proj)?,
                k_proj: m(l.k_proj)?,
                v_proj: m(l.v_proj)?,
                o_proj: m(l.o_proj)?,
                post_attention_layernorm: l.post_attention_layernorm.data,
                gate_proj: m(l.gate_proj)?,
                up_proj: m(l.up_proj)?,
                down_proj: m(l.down_proj)?,
            });
        }
        let head = match lm_head {
            None => None,
            Some(LmHead::Tied) => Some(Head::Tied),
            Some(LmHead::Separate(t)) => Some(Head::Separate(Matrix::from_in_out(t, format)?)),
        };
        let embed_tokens = embed_tokens
            .map(|t| Matrix::from_rows(t, format))
            .transpose()?;
        Ok(LlamaStage {
            meta: meta.clone(),
            dims,
            format,
            embed_tokens,
            layers,
            norm: norm.map(|n| n.data),
            head,
            rope_inv_freq: rope_inv_freq.data,
        })
    }

    /// Loads a stage from a q8 stage file (see [`super::q8file`]); the
    /// matrices' quants stay in `bytes`.
    pub fn from_q8_file(
        bytes: Arc<Vec<u8>>,
        config: &ModelConfig,
        meta: &StageMeta,
    ) -> Result<Self> {
        super::q8file::read(bytes, config, meta)
    }

    /// The stage as a q8 stage file (see [`super::q8file`]).
    pub fn to_q8_file(&self) -> Vec<u8> {
        super::q8file::write(self)
    }

    /// The manifest entry of this stage.
    pub fn meta(&self) -> &StageMeta {
        &self.meta
    }

    /// How the matrices are stored.
    pub fn format(&self) -> WeightFormat {
        self.format
    }

    /// Bytes of weights held.
    pub fn size_bytes(&self) -> usize {
        let vec = |v: &Vec<f32>| v.len() * 4;
        let layers: usize = self
            .layers
            .iter()
            .map(|l| {
                vec(&l.input_layernorm)
                    + vec(&l.post_attention_layernorm)
                    + l.matrices().iter().map(|m| m.size_bytes()).sum::<usize>()
            })
            .sum();
        let head = match &self.head {
            Some(Head::Separate(m)) => m.size_bytes(),
            _ => 0,
        };
        layers
            + head
            + self.embed_tokens.as_ref().map_or(0, Matrix::size_bytes)
            + self.norm.as_ref().map_or(0, vec)
            + vec(&self.rope_inv_freq)
    }

    /// An empty KV cache for one sequence through this stage.
    pub fn new_kv(&self) -> LlamaKv {
        LlamaKv {
            layers: vec![(Vec::new(), Vec::new()); self.layers.len()],
            positions: 0,
            width: self.dims.kv_heads * self.dims.head_dim,
        }
    }

    /// Runs the new positions of `input`, appending their keys and values
    /// to `kv`. Every check happens before `kv` changes: on error it is
    /// left as it was.
    pub fn run(&self, kv: &mut LlamaKv, input: StageInput) -> Result<StageOutput> {
        self.check_input(kv, &input)?;
        let d = self.dims;
        let n = input.seq_len();
        let start = kv.positions;
        let mut x = match input.data {
            StageData::Tokens(tokens) => {
                let embed = self
                    .embed_tokens
                    .as_ref()
                    .ok_or_else(|| self.no_tensor("embedding"))?;
                let mut x = vec![0.0f32; n * d.hidden];
                for (row, &t) in x.chunks_exact_mut(d.hidden).zip(&tokens) {
                    embed.row_into(t as usize, row);
                }
                x
            }
            StageData::Hidden(h) => h.values,
        };

        let mut scratch = Scratch::default();
        let (q_width, kv_width) = (d.heads * d.head_dim, d.kv_heads * d.head_dim);
        let mut xn = vec![0.0f32; n * d.hidden];
        let mut q = vec![0.0f32; n * q_width];
        let mut k = vec![0.0f32; n * kv_width];
        let mut v = vec![0.0f32; n * kv_width];
        let mut attn = vec![0.0f32; n * q_width];
        let mut proj = vec![0.0f32; n * d.hidden];
        let mut gate = vec![0.0f32; n * d.intermediate];
        let mut up = vec![0.0f32; n * d.intermediate];
        let mut scores = Vec::with_capacity(start + n);

        // Rotary tables of the new positions.
        let mut cos = vec![0.0f32; n * d.head_dim];
        let mut sin = vec![0.0f32; n * d.head_dim];
        for (t, (c, s)) in cos
            .chunks_exact_mut(d.head_dim)
            .zip(sin.chunks_exact_mut(d.head_dim))
            .enumerate()
        {
            kernels::rope_tables(start + t, &self.rope_inv_freq, c, s);
        }
        let scale = 1.0 / (d.head_dim as f32).sqrt();
        let group = d.heads / d.kv_heads;

        for (layer, (keys, values)) in self.layers.iter().zip(kv.layers.iter_mut()) {
            kernels::rms_norm(&x, &layer.input_layernorm, d.eps, &mut xn);
            scratch.quantize(&xn, d.hidden, layer.q_proj.format());
            layer.q_proj.matmul(&xn, n, &mut q, &scratch);
            layer.k_proj.matmul(&xn, n, &mut k, &scratch);
            layer.v_proj.matmul(&xn, n, &mut v, &scratch);
            for t in 0..n {
                let (c, s) = (
                    &cos[t * d.head_dim..(t + 1) * d.head_dim],
                    &sin[t * d.head_dim..(t + 1) * d.head_dim],
                );
                let qt = &mut q[t * q_width..(t + 1) * q_width];
                kernels::rope(qt, c, s);
                qt.iter_mut().for_each(|v| *v *= scale);
                kernels::rope(&mut k[t * kv_width..(t + 1) * kv_width], c, s);
            }
            keys.extend_from_slice(&k);
            values.extend_from_slice(&v);

            // Causal attention over the cache: query t sees positions 0..=start+t.
            for t in 0..n {
                let visible = start + t + 1;
                for h in 0..d.heads {
                    let g = h / group;
                    let qh = &q[t * q_width + h * d.head_dim..][..d.head_dim];
                    scores.clear();
                    scores.extend((0..visible).map(|p| {
                        kernels::dot_f32_head(
                            qh,
                            &keys[p * kv_width + g * d.head_dim..][..d.head_dim],
                        )
                    }));
                    kernels::softmax(&mut scores);
                    let out = &mut attn[t * q_width + h * d.head_dim..][..d.head_dim];
                    out.fill(0.0);
                    for (p, &w) in scores.iter().enumerate() {
                        kernels::axpy_head(
                            w,
                            &values[p * kv_width + g * d.head_dim..][..d.head_dim],
                            out,
                        );
                    }
                }
            }
            scratch.quantize(&attn, q_width, layer.o_proj.format());
            layer.o_proj.matmul(&attn, n, &mut proj, &scratch);
            x.iter_mut().zip(&proj).for_each(|(x, p)| *x += p);

            kernels::rms_norm(&x, &layer.post_attention_layernorm, d.eps, &mut xn);
            scratch.quantize(&xn, d.hidden, layer.gate_proj.format());
            layer.gate_proj.matmul(&xn, n, &mut gate, &scratch);
            layer.up_proj.matmul(&xn, n, &mut up, &scratch);
            kernels::silu_mul(&mut gate, &up);
            scratch.quantize(&gate, d.intermediate, layer.down_proj.format());
            layer.down_proj.matmul(&gate, n, &mut proj, &scratch);
            x.iter_mut().zip(&proj).for_each(|(x, p)| *x += p);
        }
        kv.positions = start + n;

        let Some(head) = &self.head else {
            return Ok(StageOutput::Hidden(HiddenStates {
                seq_len: n,
                hidden_size: d.hidden,
                values: x,
            }));
        };
        let norm = self
            .norm
            .as_ref()
            .ok_or_else(|| self.no_tensor("final norm"))?;
        // Logits of the last position, or of all of them.
        let rows = if input.all_logits { n } else { 1 };
        let x = &x[(n - rows) * d.hidden..];
        let mut xn = vec![0.0f32; rows * d.hidden];
        kernels::rms_norm(x, norm, d.eps, &mut xn);
        let matrix = match head {
            Head::Tied => self
                .embed_tokens
                .as_ref()
                .ok_or_else(|| self.no_tensor("embedding"))?,
            Head::Separate(m) => m,
        };
        let mut logits = vec![0.0f32; rows * d.vocab];
        scratch.quantize(&xn, d.hidden, matrix.format());
        matrix.matmul(&xn, rows, &mut logits, &scratch);
        let last = logits[(rows - 1) * d.vocab..].to_vec();
        Ok(StageOutput::Logits(Logits {
            vocab_size: d.vocab,
            last,
            all: input.all_logits.then_some(logits),
        }))
    }

    fn no_tensor(&self, what: &str) -> Error {
        Error::StageMismatch {
            stage: self.meta.index,
            message: format!("the stage has no {what}"),
        }
    }

    fn check_input(&self, kv: &LlamaKv, input: &StageInput) -> Result<()> {
        let d = self.dims;
        if kv.layers.len() != self.layers.len() || kv.width != d.kv_heads * d.head_dim {
            return Err(Error::ShapeMismatch {
                what: format!("KV cache for stage {}", self.meta.index),
                expected: format!("{} layers", self.layers.len()),
                found: format!("{} layers", kv.layers.len()),
            });
        }
        if input.start_position != kv.positions {
            return Err(Error::PositionMismatch {
                expected: kv.positions,
                found: input.start_position,
            });
        }
        let is_first = self.embed_tokens.is_some() && self.meta.is_first();
        let (expected, found) = match &input.data {
            StageData::Tokens(_) if !is_first => ("hidden states", "token ids"),
            StageData::Hidden(_) if self.meta.is_first() => ("token ids", "hidden states"),
            _ => return check_stage_data(&input.data, self.meta.index, d.hidden, d.vocab),
        };
        Err(Error::ShapeMismatch {
            what: format!("input of stage {}", self.meta.index),
            expected: expected.into(),
            found: found.into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every shape the int8 product splits into tiles of eight or four rows
    /// by four tokens, four rows by one token, and their remainders: each
    /// output is the one product of its row and token.
    #[test]
    fn q8_matmul_gives_every_row_and_token_its_own_dot_product() {
        let cols = 4 * BLOCK + 2 * BLOCK; // one group and two tail blocks
        for rows in [8, 12, 6, 16] {
            let values: Vec<f32> = (0..rows * cols)
                .map(|i| ((i * 37 % 101) as f32 - 50.0) / 17.0)
                .collect();
            let tensor = F32Tensor {
                shape: vec![rows, cols],
                data: values,
            };
            let m = Matrix::from_rows(tensor, WeightFormat::Q8).unwrap();
            let Matrix::Q8(q8) = &m else {
                panic!("not quantised")
            };
            for n in [1, 3, 4, 5, 8, 11, 16, 19] {
                let x: Vec<f32> = (0..n * cols)
                    .map(|i| ((i * 53 % 97) as f32 - 48.0) / 13.0)
                    .collect();
                let mut scratch = Scratch::default();
                scratch.quantize(&x, cols, WeightFormat::Q8);
                let mut y = vec![f32::NAN; n * rows];
                m.matmul(&x, n, &mut y, &scratch);
                let blocks = cols / BLOCK;
                for t in 0..n {
                    for o in 0..rows {
                        let (w, dw) = q8.row(o);
                        let want = kernels::dot_q8(
                            w,
                            dw,
                            &scratch.quants[t * cols..(t + 1) * cols],
                            &scratch.scales[t * blocks..(t + 1) * blocks],
                        );
                        assert_eq!(
                            y[t * rows + o].to_bits(),
                            want.to_bits(),
                            "{rows}x{n}: {o}, {t}"
                        );
                    }
                }
            }
        }
    }
}
