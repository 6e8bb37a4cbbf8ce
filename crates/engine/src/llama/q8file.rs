//! The q8 stage file: a [`LlamaStage`]'s weights as the kernels read them,
//! so that a worker loads an 8-bit stage without ever holding it in `f32`.
//!
//! Layout (little-endian; specified in `docs/model-format.md`):
//!
//! ```text
//! 0   magic      8 bytes  "ICLLMQ8\0"
//! 8   version    u32      2
//! 12  count      u32      number of tensors
//! 16  data_start u64      offset of the first tensor's data
//! 24  table      count entries:
//!       name_len u16, name (UTF-8), dtype u8, ndim u8, dims u64 × ndim,
//!       offset u64, size u64
//! ..  data       each tensor at a multiple of 32 bytes, zero padding between
//! ```
//!
//! `dtype` 0 is `f32`; 1 is 8-bit rows (`[rows, cols]`, `cols` a multiple
//! of 32): `rows × cols` signed quants, then `rows × cols / 32` `f32`
//! scales, each row's blocks laid out as [`super::kernels::block_of`] says
//! (groups of four interleaved blocks, then contiguous ones; version 1
//! had contiguous blocks only and is refused). Tensors carry Hugging Face names and layouts: matrices are
//! `[out, in]` (`model.layers.0.self_attn.q_proj.weight`, `lm_head.weight`),
//! the embedding `[vocab, hidden]`, norms and `model.rotary_emb.inv_freq`
//! 1-D `f32`.
//!
//! [`read`] keeps the file's buffer and points the matrices' quants and
//! scales into it (no copy); only the small vectors (norms, rotary
//! frequencies) are copied out.

use std::collections::HashMap;
use std::sync::Arc;

use super::forward::{
    Dims, Head, Layer, LlamaStage, Matrix, Q8Matrix, Quants, Scales, WeightFormat,
};
use super::kernels::BLOCK;
use super::weights::{layer_tensor_name, WeightsError, EMBED_TOKENS, FINAL_NORM, ROPE_INV_FREQ};
use crate::error::Result;
use crate::manifest::{ModelConfig, StageMeta};

/// First bytes of a q8 stage file.
pub const MAGIC: &[u8; 8] = b"ICLLMQ8\0";
/// The version [`write`] writes and [`read`] reads.
pub const VERSION: u32 = 2;
/// Alignment of each tensor's data in the file.
pub const ALIGN: usize = 32;
/// Name of an untied output projection, `[vocab, hidden]`.
pub const LM_HEAD: &str = "lm_head.weight";

const DTYPE_F32: u8 = 0;
const DTYPE_Q8: u8 = 1;

/// Per-layer matrix names (Hugging Face, `[out, in]`), in [`Layer`] order.
const LAYER_MATRICES: [&str; 7] = [
    "self_attn.q_proj.weight",
    "self_attn.k_proj.weight",
    "self_attn.v_proj.weight",
    "self_attn.o_proj.weight",
    "mlp.gate_proj.weight",
    "mlp.up_proj.weight",
    "mlp.down_proj.weight",
];
const INPUT_NORM: &str = "input_layernorm.weight";
const POST_NORM: &str = "post_attention_layernorm.weight";

/// Whether `bytes` start like a q8 stage file.
pub fn is_q8_file(bytes: &[u8]) -> bool {
    bytes.starts_with(MAGIC)
}

enum Data<'a> {
    F32(&'a [f32]),
    Matrix(&'a Matrix),
}

/// Serialises a stage (`f32` or 8-bit matrices alike).
pub fn write(stage: &LlamaStage) -> Vec<u8> {
    let mut tensors: Vec<(String, Vec<usize>, Data<'_>)> = Vec::new();
    let matrix = |m: &Matrix| vec![m.rows(), m.cols()];
    if let Some(embed) = &stage.embed_tokens {
        tensors.push((EMBED_TOKENS.into(), matrix(embed), Data::Matrix(embed)));
    }
    for (i, layer) in stage.layers.iter().enumerate() {
        let l = stage.meta.layer_start + i;
        tensors.push((
            layer_tensor_name(l, INPUT_NORM),
            vec![layer.input_layernorm.len()],
            Data::F32(&layer.input_layernorm),
        ));
        for (name, m) in LAYER_MATRICES.iter().zip(layer.matrices()) {
            tensors.push((layer_tensor_name(l, name), matrix(m), Data::Matrix(m)));
        }
        tensors.push((
            layer_tensor_name(l, POST_NORM),
            vec![layer.post_attention_layernorm.len()],
            Data::F32(&layer.post_attention_layernorm),
        ));
    }
    if let Some(norm) = &stage.norm {
        tensors.push((FINAL_NORM.into(), vec![norm.len()], Data::F32(norm)));
    }
    if let Some(Head::Separate(head)) = &stage.head {
        tensors.push((LM_HEAD.into(), matrix(head), Data::Matrix(head)));
    }
    tensors.push((
        ROPE_INV_FREQ.into(),
        vec![stage.rope_inv_freq.len()],
        Data::F32(&stage.rope_inv_freq),
    ));

    let size = |d: &Data<'_>| match d {
        Data::F32(v) => v.len() * 4,
        Data::Matrix(m) => m.size_bytes(),
    };
    let table_len: usize = tensors
        .iter()
        .map(|(name, dims, _)| 2 + name.len() + 2 + 8 * dims.len() + 16)
        .sum();
    let data_start = align(24 + table_len);
    let mut offsets = Vec::with_capacity(tensors.len());
    let mut end = data_start;
    for (_, _, data) in &tensors {
        offsets.push(end);
        end = align(end + size(data));
    }

    let mut out = Vec::with_capacity(end);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&(tensors.len() as u32).to_le_bytes());
    out.extend_from_slice(&(data_start as u64).to_le_bytes());
    for ((name, dims, data), &offset) in tensors.iter().zip(&offsets) {
        out.extend_from_slice(&(name.len() as u16).to_le_bytes());
        out.extend_from_slice(name.as_bytes());
        let dtype = match data {
            Data::Matrix(Matrix::Q8(_)) => DTYPE_Q8,
            _ => DTYPE_F32,
        };
        out.push(dtype);
        out.push(dims.len() as u8);
        for &d in dims {
            out.extend_from_slice(&(d as u64).to_le_bytes());
        }
        out.extend_from_slice(&(offset as u64).to_le_bytes());
        out.extend_from_slice(&(size(data) as u64).to_le_bytes());
    }
    for ((_, _, data), &offset) in tensors.iter().zip(&offsets) {
        out.resize(offset, 0);
        match data {
            Data::F32(v) => extend_f32(&mut out, v),
            Data::Matrix(Matrix::F32 { values, .. }) => extend_f32(&mut out, values),
            Data::Matrix(Matrix::Q8(m)) => {
                out.extend(m.quants.as_slice().iter().map(|&q| q as u8));
                extend_f32(&mut out, m.scales.as_slice());
            }
        }
    }
    out.resize(end, 0);
    out
}

fn extend_f32(out: &mut Vec<u8>, values: &[f32]) {
    out.extend(values.iter().flat_map(|v| v.to_le_bytes()));
}

fn align(n: usize) -> usize {
    n.div_ceil(ALIGN) * ALIGN
}

struct Entry {
    dtype: u8,
    dims: Vec<usize>,
    offset: usize,
    size: usize,
}

fn error(offset: usize, message: impl Into<String>) -> WeightsError {
    WeightsError::Q8File {
        offset,
        message: message.into(),
    }
}

struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], WeightsError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or_else(|| error(self.pos, "the tensor table runs past the end of the file"))?;
        let out = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, WeightsError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, WeightsError> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, WeightsError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn usize(&mut self) -> Result<usize, WeightsError> {
        let at = self.pos;
        let b = self.take(8)?;
        let v = u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
        usize::try_from(v).map_err(|_| error(at, format!("{v} does not fit in memory")))
    }
}

fn table(bytes: &[u8]) -> Result<HashMap<String, Entry>, WeightsError> {
    if !is_q8_file(bytes) {
        return Err(error(0, "not a q8 stage file (bad magic)"));
    }
    let mut c = Cursor { bytes, pos: 8 };
    let version = c.u32()?;
    if version != VERSION {
        return Err(error(
            8,
            format!("unsupported version: expected {VERSION}, found {version}"),
        ));
    }
    let count = c.u32()?;
    let data_start = c.usize()?;
    let mut entries = HashMap::new();
    for _ in 0..count {
        let at = c.pos;
        let len = usize::from(c.u16()?);
        let name = std::str::from_utf8(c.take(len)?)
            .map_err(|_| error(at, "tensor name is not UTF-8"))?
            .to_string();
        let dtype = c.u8()?;
        let ndim = c.u8()?;
        let dims = (0..ndim)
            .map(|_| c.usize())
            .collect::<Result<Vec<_>, _>>()?;
        let offset = c.usize()?;
        let size = c.usize()?;
        let in_file = offset >= data_start
            && offset % ALIGN == 0
            && offset.checked_add(size).is_some_and(|e| e <= bytes.len());
        if !in_file {
            return Err(error(
                at,
                format!(
                    "tensor {name}: {size} bytes at {offset} are not aligned data within the file"
                ),
            ));
        }
        if entries
            .insert(
                name.clone(),
                Entry {
                    dtype,
                    dims,
                    offset,
                    size,
                },
            )
            .is_some()
        {
            return Err(error(at, format!("tensor {name} appears twice")));
        }
    }
    Ok(entries)
}

/// Loads a stage from a q8 stage file, checking every tensor against
/// `config` and `meta`. The matrices' quants stay in `bytes`.
pub fn read(bytes: Arc<Vec<u8>>, config: &ModelConfig, meta: &StageMeta) -> Result<LlamaStage> {
    let dims = Dims::new(config)?;
    let entries = table(&bytes)?;
    let get = |name: &str| {
        entries
            .get(name)
            .ok_or_else(|| WeightsError::MissingTensor {
                stage: meta.index,
                name: name.to_string(),
            })
    };
    let shape_error = |name: &str, expected: &[usize], e: &Entry| WeightsError::Shape {
        name: name.to_string(),
        expected: expected.to_vec(),
        found: e.dims.iter().map(|&d| d as i64).collect(),
    };
    let f32s = |e: &Entry| -> Vec<f32> {
        bytes[e.offset..e.offset + e.size]
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect()
    };
    let vector = |name: &str, len: usize| -> Result<Vec<f32>, WeightsError> {
        let e = get(name)?;
        if e.dims != [len] || e.dtype != DTYPE_F32 || e.size != len * 4 {
            return Err(shape_error(name, &[len], e));
        }
        Ok(f32s(e))
    };
    let matrix = |name: &str, rows: usize, cols: usize| -> Result<Matrix, WeightsError> {
        let e = get(name)?;
        if e.dims != [rows, cols] {
            return Err(shape_error(name, &[rows, cols], e));
        }
        let n = rows * cols;
        let (expected, found) = match e.dtype {
            DTYPE_F32 => (n * 4, e.size),
            DTYPE_Q8 if cols.is_multiple_of(BLOCK) => (n + n / BLOCK * 4, e.size),
            other => {
                return Err(error(
                    e.offset,
                    format!("tensor {name}: unsupported dtype {other} for [{rows}, {cols}]"),
                ))
            }
        };
        if expected != found {
            return Err(WeightsError::DataLength {
                name: name.to_string(),
                expected,
                found,
            });
        }
        Ok(if e.dtype == DTYPE_F32 {
            Matrix::F32 {
                rows,
                cols,
                values: f32s(e),
            }
        } else {
            let quants = Quants::shared(Arc::clone(&bytes), e.offset, n)
                .ok_or_else(|| error(e.offset, format!("tensor {name} runs past the file")))?;
            let scales = Scales::shared(&bytes, e.offset + n, n / BLOCK)
                .ok_or_else(|| error(e.offset, format!("tensor {name} runs past the file")))?;
            Matrix::Q8(Q8Matrix {
                rows,
                cols,
                quants,
                scales,
            })
        })
    };

    let (h, q, kv, i) = (
        dims.hidden,
        dims.heads * dims.head_dim,
        dims.kv_heads * dims.head_dim,
        dims.intermediate,
    );
    let shapes = [(q, h), (kv, h), (kv, h), (h, q), (i, h), (i, h), (h, i)];
    let mut layers = Vec::with_capacity(meta.num_layers());
    for l in meta.layer_start..meta.layer_end {
        let m = |k: usize| {
            let (rows, cols) = shapes[k];
            matrix(&layer_tensor_name(l, LAYER_MATRICES[k]), rows, cols)
        };
        layers.push(Layer {
            input_layernorm: vector(&layer_tensor_name(l, INPUT_NORM), h)?,
            q_proj: m(0)?,
            k_proj: m(1)?,
            v_proj: m(2)?,
            o_proj: m(3)?,
            post_attention_layernorm: vector(&layer_tensor_name(l, POST_NORM), h)?,
            gate_proj: m(4)?,
            up_proj: m(5)?,
            down_proj: m(6)?,
        });
    }
    let (norm, head) = if meta.is_last() {
        let head = if entries.contains_key(LM_HEAD) {
            Head::Separate(matrix(LM_HEAD, dims.vocab, h)?)
        } else if config.tie_word_embeddings {
            Head::Tied
        } else {
            return Err(WeightsError::MissingTensor {
                stage: meta.index,
                name: LM_HEAD.into(),
            }
            .into());
        };
        (Some(vector(FINAL_NORM, h)?), Some(head))
    } else {
        (None, None)
    };
    let embed_tokens = if meta.is_first() || head == Some(Head::Tied) {
        Some(matrix(EMBED_TOKENS, dims.vocab, h)?)
    } else {
        None
    };
    let format = if layers
        .iter()
        .flat_map(Layer::matrices)
        .all(|m| matches!(m, Matrix::Q8(_)))
    {
        WeightFormat::Q8
    } else {
        WeightFormat::F32
    };
    Ok(LlamaStage {
        meta: meta.clone(),
        dims,
        format,
        embed_tokens,
        layers,
        norm,
        head,
        rope_inv_freq: vector(ROPE_INV_FREQ, dims.head_dim / 2)?,
    })
}
