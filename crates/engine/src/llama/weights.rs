//! Typed llama weights of one stage, read from its ONNX initializers by name.
//!
//! The exporter (`scripts/build_llama_onnx.py`) names initializers after the
//! Hugging Face parameters; matrices of linear layers are stored transposed,
//! `[in, out]`, with a `.T` suffix:
//!
//! | tensor | name | shape |
//! |---|---|---|
//! | embedding | `model.embed_tokens.weight` | `[vocab, hidden]` |
//! | norms | `model.layers.N.{input,post_attention}_layernorm.weight`, `model.norm.weight` | `[hidden]` |
//! | attention | `model.layers.N.self_attn.{q,k,v,o}_proj.weight.T` | `[in, out]` |
//! | MLP | `model.layers.N.mlp.{gate,up,down}_proj.weight.T` | `[in, out]` |
//! | untied head | `lm_head.weight.T` | `[hidden, vocab]` |
//! | rotary | `model.rotary_emb.inv_freq` | `[head_dim / 2]` |
//!
//! Which tensors a stage must hold follows from its [`StageMeta`]: its layer
//! range, the embedding on the first stage, the final norm and the head on
//! the last (the embedding matrix again when the head is tied). Every shape
//! is checked against the [`ModelConfig`].
//!
//! ```no_run
//! # fn demo(bytes: &[u8], manifest: &engine::Manifest) -> engine::Result<()> {
//! use engine::llama::StageWeights;
//! let weights = StageWeights::from_onnx(bytes, &manifest.config, &manifest.stages[0])?;
//! for (name, tensor) in weights.named_tensors() {
//!     println!("{name} {:?}", tensor.shape);
//! }
//! # Ok(()) }
//! ```

use std::collections::HashMap;

use thiserror::Error;

use super::onnx_proto::{self, Initializer, TensorData, DATA_TYPE_FLOAT};
use crate::manifest::{ModelConfig, StageMeta};

/// Why the weights of a stage could not be read.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum WeightsError {
    /// The bytes are not a well-formed ONNX protobuf.
    #[error("malformed ONNX protobuf at byte {offset}: {message}")]
    Protobuf { offset: usize, message: String },

    /// A tensor the stage needs is not among its initializers.
    #[error("stage {stage} lacks the initializer {name}")]
    MissingTensor { stage: usize, name: String },

    /// A tensor has another shape than the model config implies.
    #[error("initializer {name}: expected shape {expected:?}, found {found:?}")]
    Shape {
        name: String,
        expected: Vec<usize>,
        found: Vec<i64>,
    },

    /// A tensor is not `float32`.
    #[error("initializer {name}: expected float32 (ONNX data type 1), found data type {found}")]
    DataType { name: String, found: i32 },

    /// A tensor's values live in an external file, which a stage cannot have.
    #[error("initializer {name} stores its data outside the ONNX file")]
    ExternalData { name: String },

    /// A q8 stage file is malformed.
    #[error("malformed q8 stage file at byte {offset}: {message}")]
    Q8File { offset: usize, message: String },

    /// A tensor holds another number of bytes than its shape implies.
    #[error("initializer {name}: expected {expected} bytes of data, found {found}")]
    DataLength {
        name: String,
        expected: usize,
        found: usize,
    },
}

/// A dense `f32` tensor, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct F32Tensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

impl F32Tensor {
    /// Number of values.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether the tensor holds no values.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
}

/// The weights of one decoder layer. Linear layers are `[in, out]`.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerWeights {
    /// `[hidden]`
    pub input_layernorm: F32Tensor,
    /// `[hidden, num_attention_heads × head_dim]`
    pub q_proj: F32Tensor,
    /// `[hidden, num_kv_heads × head_dim]`
    pub k_proj: F32Tensor,
    /// `[hidden, num_kv_heads × head_dim]`
    pub v_proj: F32Tensor,
    /// `[num_attention_heads × head_dim, hidden]`
    pub o_proj: F32Tensor,
    /// `[hidden]`
    pub post_attention_layernorm: F32Tensor,
    /// `[hidden, intermediate]`
    pub gate_proj: F32Tensor,
    /// `[hidden, intermediate]`
    pub up_proj: F32Tensor,
    /// `[intermediate, hidden]`
    pub down_proj: F32Tensor,
}

/// The output projection of the last stage.
#[derive(Debug, Clone, PartialEq)]
pub enum LmHead {
    /// The transposed token embedding ([`StageWeights::embed_tokens`]).
    Tied,
    /// Its own matrix, `[hidden, vocab]`.
    Separate(F32Tensor),
}

/// Every weight of one stage.
#[derive(Debug, Clone, PartialEq)]
pub struct StageWeights {
    /// Global index of the first layer of the stage.
    pub layer_start: usize,
    /// `[vocab, hidden]`: on the first stage, and on the last when the head is tied.
    pub embed_tokens: Option<F32Tensor>,
    /// The stage's layers, in order.
    pub layers: Vec<LayerWeights>,
    /// Final norm `[hidden]` (last stage).
    pub norm: Option<F32Tensor>,
    /// Output projection (last stage).
    pub lm_head: Option<LmHead>,
    /// Rotary inverse frequencies `[head_dim / 2]`.
    pub rope_inv_freq: F32Tensor,
}

/// Initializer name of the token embedding.
pub const EMBED_TOKENS: &str = "model.embed_tokens.weight";
/// Initializer name of the final norm.
pub const FINAL_NORM: &str = "model.norm.weight";
/// Initializer name of an untied output projection (`[hidden, vocab]`).
pub const LM_HEAD: &str = "lm_head.weight.T";
/// Initializer name of the rotary inverse frequencies.
pub const ROPE_INV_FREQ: &str = "model.rotary_emb.inv_freq";

/// Initializer name of a layer tensor, e.g. `layer_tensor_name(3, "mlp.up_proj.weight.T")`.
pub fn layer_tensor_name(layer: usize, tensor: &str) -> String {
    format!("model.layers.{layer}.{tensor}")
}

/// Suffixes of the per-layer tensors, in [`LayerWeights`] field order.
pub const LAYER_TENSORS: [&str; 9] = [
    "input_layernorm.weight",
    "self_attn.q_proj.weight.T",
    "self_attn.k_proj.weight.T",
    "self_attn.v_proj.weight.T",
    "self_attn.o_proj.weight.T",
    "post_attention_layernorm.weight",
    "mlp.gate_proj.weight.T",
    "mlp.up_proj.weight.T",
    "mlp.down_proj.weight.T",
];

impl LayerWeights {
    /// The tensors in [`LAYER_TENSORS`] order.
    pub fn tensors(&self) -> [&F32Tensor; 9] {
        [
            &self.input_layernorm,
            &self.q_proj,
            &self.k_proj,
            &self.v_proj,
            &self.o_proj,
            &self.post_attention_layernorm,
            &self.gate_proj,
            &self.up_proj,
            &self.down_proj,
        ]
    }
}

/// Expected shape of each layer tensor, in [`LAYER_TENSORS`] order.
fn layer_shapes(c: &ModelConfig) -> [[usize; 2]; 9] {
    let (h, q, kv, i) = (
        c.hidden_size,
        c.num_attention_heads * c.head_dim,
        c.num_kv_heads * c.head_dim,
        c.intermediate_size,
    );
    [
        [h, 0],
        [h, q],
        [h, kv],
        [h, kv],
        [q, h],
        [h, 0],
        [h, i],
        [h, i],
        [i, h],
    ]
}

impl StageWeights {
    /// Reads the weights of the stage `meta` of a model with `config` from
    /// the stage's ONNX bytes. Tensors the stage does not need are ignored.
    pub fn from_onnx(
        onnx_bytes: &[u8],
        config: &ModelConfig,
        meta: &StageMeta,
    ) -> crate::Result<StageWeights> {
        let inits = onnx_proto::initializers(onnx_bytes)?;
        let by_name: HashMap<&str, &Initializer<'_>> =
            inits.iter().map(|init| (init.name, init)).collect();
        let get = |name: &str, shape: &[usize]| -> Result<F32Tensor, WeightsError> {
            let init = by_name
                .get(name)
                .ok_or_else(|| WeightsError::MissingTensor {
                    stage: meta.index,
                    name: name.to_string(),
                })?;
            read_f32(init, shape)
        };

        let shapes = layer_shapes(config);
        let mut layers = Vec::with_capacity(meta.num_layers());
        for layer in meta.layer_start..meta.layer_end {
            let tensor = |k: usize| {
                let shape = &shapes[k];
                let shape = if shape[1] == 0 {
                    &shape[..1]
                } else {
                    &shape[..]
                };
                get(&layer_tensor_name(layer, LAYER_TENSORS[k]), shape)
            };
            layers.push(LayerWeights {
                input_layernorm: tensor(0)?,
                q_proj: tensor(1)?,
                k_proj: tensor(2)?,
                v_proj: tensor(3)?,
                o_proj: tensor(4)?,
                post_attention_layernorm: tensor(5)?,
                gate_proj: tensor(6)?,
                up_proj: tensor(7)?,
                down_proj: tensor(8)?,
            });
        }

        let (h, v) = (config.hidden_size, config.vocab_size);
        let (norm, lm_head) = if meta.is_last() {
            let head = if by_name.contains_key(LM_HEAD) {
                LmHead::Separate(get(LM_HEAD, &[h, v])?)
            } else if config.tie_word_embeddings {
                LmHead::Tied
            } else {
                return Err(WeightsError::MissingTensor {
                    stage: meta.index,
                    name: LM_HEAD.into(),
                }
                .into());
            };
            (Some(get(FINAL_NORM, &[h])?), Some(head))
        } else {
            (None, None)
        };
        let needs_embedding = meta.is_first() || lm_head == Some(LmHead::Tied);
        let embed_tokens = if needs_embedding {
            Some(get(EMBED_TOKENS, &[v, h])?)
        } else {
            None
        };
        let rope_inv_freq = get(ROPE_INV_FREQ, &[config.head_dim / 2])?;
        Ok(StageWeights {
            layer_start: meta.layer_start,
            embed_tokens,
            layers,
            norm,
            lm_head,
            rope_inv_freq,
        })
    }

    /// Every tensor with its initializer name, in a fixed order: embedding,
    /// layers, final norm, untied head, rotary frequencies.
    pub fn named_tensors(&self) -> Vec<(String, &F32Tensor)> {
        let mut out = Vec::new();
        if let Some(embed) = &self.embed_tokens {
            out.push((EMBED_TOKENS.to_string(), embed));
        }
        for (i, layer) in self.layers.iter().enumerate() {
            for (suffix, tensor) in LAYER_TENSORS.iter().zip(layer.tensors()) {
                out.push((layer_tensor_name(self.layer_start + i, suffix), tensor));
            }
        }
        if let Some(norm) = &self.norm {
            out.push((FINAL_NORM.to_string(), norm));
        }
        if let Some(LmHead::Separate(head)) = &self.lm_head {
            out.push((LM_HEAD.to_string(), head));
        }
        out.push((ROPE_INV_FREQ.to_string(), &self.rope_inv_freq));
        out
    }

    /// Number of `f32` values held.
    pub fn num_values(&self) -> usize {
        self.named_tensors().iter().map(|(_, t)| t.len()).sum()
    }
}

fn read_f32(init: &Initializer<'_>, shape: &[usize]) -> Result<F32Tensor, WeightsError> {
    let name = init.name.to_string();
    if init.data_type != DATA_TYPE_FLOAT {
        return Err(WeightsError::DataType {
            name,
            found: init.data_type,
        });
    }
    if init.external {
        return Err(WeightsError::ExternalData { name });
    }
    let shape_matches = init.dims.len() == shape.len()
        && init
            .dims
            .iter()
            .zip(shape)
            .all(|(&d, &s)| usize::try_from(d).is_ok_and(|d| d == s));
    if !shape_matches {
        return Err(WeightsError::Shape {
            name,
            expected: shape.to_vec(),
            found: init.dims.clone(),
        });
    }
    let bytes = match init.data {
        TensorData::Raw(bytes) | TensorData::PackedFloats(bytes) => bytes,
        TensorData::None => &[],
    };
    let expected = shape.iter().product::<usize>() * 4;
    if bytes.len() != expected {
        return Err(WeightsError::DataLength {
            name,
            expected,
            found: bytes.len(),
        });
    }
    let data = bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    Ok(F32Tensor {
        shape: shape.to_vec(),
        data,
    })
}
