//! Reads [`ModelWeights`] from a model's ONNX stage files (the files and
//! manifest the canisters load): every f32 initializer named `model.*`,
//! across all stages, by the names the export gives them
//! (`model.layers.N.self_attn.q_proj.weight.T` `[in, out]`,
//! `model.embed_tokens.weight` `[vocab, hidden]`, `model.norm.weight`,
//! `model.rotary_emb.inv_freq`, ...). The protobuf is decoded with
//! tract-onnx's generated types (native only).

use std::collections::HashMap;

use engine::{Manifest, ModelDir};
use tract_onnx::pb::{tensor_proto::DataType, TensorProto};
use tract_onnx::prelude::Framework;

use crate::error::{GpuError, Result};
use crate::weights::{LayerWeights, ModelWeights};

/// An initializer: its dims and values.
struct Tensor {
    dims: Vec<usize>,
    values: Vec<f32>,
}

fn f32_values(t: &TensorProto) -> Result<Vec<f32>> {
    if t.data_type != DataType::Float as i32 {
        return Err(GpuError::Weights(format!(
            "{}: data type {} is not float32",
            t.name, t.data_type
        )));
    }
    if !t.raw_data.is_empty() {
        if !t.raw_data.len().is_multiple_of(4) {
            return Err(GpuError::Weights(format!(
                "{}: {} raw bytes is not a whole number of f32",
                t.name,
                t.raw_data.len()
            )));
        }
        Ok(t.raw_data
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect())
    } else {
        Ok(t.float_data.clone())
    }
}

impl ModelWeights {
    /// The weights of a model read with [`ModelDir::read`].
    pub fn from_model_dir(dir: &ModelDir) -> Result<Self> {
        Self::from_stage_files(&dir.manifest, &dir.stage_files)
    }

    /// The weights in `stage_files` (every stage of `manifest`, in order).
    pub fn from_stage_files<B: AsRef<[u8]>>(
        manifest: &Manifest,
        stage_files: &[B],
    ) -> Result<Self> {
        if stage_files.len() != manifest.stages.len() {
            return Err(GpuError::Weights(format!(
                "{} stage files for {} stages",
                stage_files.len(),
                manifest.stages.len()
            )));
        }
        let onnx = tract_onnx::onnx();
        let mut tensors: HashMap<String, Tensor> = HashMap::new();
        for (i, bytes) in stage_files.iter().enumerate() {
            let proto = onnx
                .proto_model_for_read(&mut bytes.as_ref())
                .map_err(|e| GpuError::Weights(format!("stage {i}: {e}")))?;
            let graph = proto
                .graph
                .ok_or_else(|| GpuError::Weights(format!("stage {i}: no graph")))?;
            for t in &graph.initializer {
                // Stages repeat the embedding table (first and last stage).
                if !t.name.starts_with("model.") || tensors.contains_key(&t.name) {
                    continue;
                }
                let dims = t
                    .dims
                    .iter()
                    .map(|&d| usize::try_from(d))
                    .collect::<std::result::Result<Vec<_>, _>>()
                    .map_err(|_| GpuError::Weights(format!("{}: dims {:?}", t.name, t.dims)))?;
                let values = f32_values(t)?;
                if values.len() != dims.iter().product::<usize>() {
                    return Err(GpuError::Weights(format!(
                        "{}: {} values for dims {dims:?}",
                        t.name,
                        values.len()
                    )));
                }
                tensors.insert(t.name.clone(), Tensor { dims, values });
            }
        }
        let c = manifest.config.clone();
        let mut take = |name: &str, dims: &[usize]| -> Result<Vec<f32>> {
            let t = tensors.remove(name).ok_or_else(|| {
                GpuError::Weights(format!("no initializer `{name}` in the stages"))
            })?;
            if t.dims != dims {
                return Err(GpuError::Weights(format!(
                    "{name}: dims {:?}, expected {dims:?}",
                    t.dims
                )));
            }
            Ok(t.values)
        };
        let hidden = c.hidden_size;
        let q_width = c.num_attention_heads * c.head_dim;
        let kv_width = c.num_kv_heads * c.head_dim;
        let inter = c.intermediate_size;
        let mut layers = Vec::with_capacity(c.num_layers);
        for n in 0..c.num_layers {
            let p = format!("model.layers.{n}.");
            layers.push(LayerWeights {
                input_norm: take(&format!("{p}input_layernorm.weight"), &[hidden])?,
                q: take(&format!("{p}self_attn.q_proj.weight.T"), &[hidden, q_width])?,
                k: take(
                    &format!("{p}self_attn.k_proj.weight.T"),
                    &[hidden, kv_width],
                )?,
                v: take(
                    &format!("{p}self_attn.v_proj.weight.T"),
                    &[hidden, kv_width],
                )?,
                o: take(&format!("{p}self_attn.o_proj.weight.T"), &[q_width, hidden])?,
                post_norm: take(&format!("{p}post_attention_layernorm.weight"), &[hidden])?,
                gate: take(&format!("{p}mlp.gate_proj.weight.T"), &[hidden, inter])?,
                up: take(&format!("{p}mlp.up_proj.weight.T"), &[hidden, inter])?,
                down: take(&format!("{p}mlp.down_proj.weight.T"), &[inter, hidden])?,
            });
        }
        let weights = ModelWeights {
            embed: take("model.embed_tokens.weight", &[c.vocab_size, hidden])?,
            norm: take("model.norm.weight", &[hidden])?,
            inv_freq: take("model.rotary_emb.inv_freq", &[c.head_dim / 2])?,
            layers,
            config: c,
        };
        weights.validate()?;
        Ok(weights)
    }
}
