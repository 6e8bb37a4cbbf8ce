//! The weights the GPU model uploads: f32 tensors of a llama decoder in the
//! layout of the ONNX stages (projections `[in, out]`, the embedding table
//! `[vocab, hidden]`, tied to the LM head), gathered from every stage of a
//! model with the engine's [`StageWeights`] (the stage files and manifest
//! the canisters load).

use engine::llama::{LmHead, StageWeights};
use engine::{Manifest, ModelConfig};

use crate::error::{GpuError, Result};

/// One decoder layer.
#[derive(Debug, Clone, Default)]
pub struct LayerWeights {
    /// `[hidden]`
    pub input_norm: Vec<f32>,
    /// `[hidden, heads * head_dim]`
    pub q: Vec<f32>,
    /// `[hidden, kv_heads * head_dim]`
    pub k: Vec<f32>,
    /// `[hidden, kv_heads * head_dim]`
    pub v: Vec<f32>,
    /// `[heads * head_dim, hidden]`
    pub o: Vec<f32>,
    /// `[hidden]`
    pub post_norm: Vec<f32>,
    /// `[hidden, intermediate]`
    pub gate: Vec<f32>,
    /// `[hidden, intermediate]`
    pub up: Vec<f32>,
    /// `[intermediate, hidden]`
    pub down: Vec<f32>,
}

/// A whole llama decoder.
#[derive(Debug, Clone)]
pub struct ModelWeights {
    pub config: ModelConfig,
    /// `[vocab, hidden]`, also the LM head.
    pub embed: Vec<f32>,
    pub layers: Vec<LayerWeights>,
    /// `[hidden]`
    pub norm: Vec<f32>,
    /// `[head_dim / 2]`
    pub inv_freq: Vec<f32>,
}

impl ModelWeights {
    /// Checks every tensor's length against the config.
    pub fn validate(&self) -> Result<()> {
        let c = &self.config;
        let hidden = c.hidden_size;
        let q_width = c.num_attention_heads * c.head_dim;
        let kv_width = c.num_kv_heads * c.head_dim;
        let inter = c.intermediate_size;
        let bad = |m: String| Err(GpuError::Weights(m));
        if c.num_kv_heads == 0 || !c.num_attention_heads.is_multiple_of(c.num_kv_heads) {
            return bad(format!(
                "{} attention heads do not group over {} kv heads",
                c.num_attention_heads, c.num_kv_heads
            ));
        }
        if c.head_dim == 0 || !c.head_dim.is_multiple_of(2) {
            return bad(format!(
                "head_dim {} is not a positive even number",
                c.head_dim
            ));
        }
        // The linear and LM-head kernels read rows as vec4s.
        for (name, width) in [
            ("hidden_size", hidden),
            ("attention width", q_width),
            ("kv width", kv_width),
            ("intermediate_size", inter),
        ] {
            if !width.is_multiple_of(4) {
                return bad(format!("{name} {width} is not a multiple of 4"));
            }
        }
        if !c.tie_word_embeddings {
            return bad(
                "the LM head is not tied to the embeddings; only tied heads are supported".into(),
            );
        }
        if self.layers.len() != c.num_layers {
            return bad(format!(
                "{} layers, config says {}",
                self.layers.len(),
                c.num_layers
            ));
        }
        let check = |name: &str, have: usize, want: usize| {
            if have == want {
                Ok(())
            } else {
                Err(GpuError::Weights(format!(
                    "{name}: {have} values, expected {want}"
                )))
            }
        };
        check("embed", self.embed.len(), c.vocab_size * hidden)?;
        check("norm", self.norm.len(), hidden)?;
        check("inv_freq", self.inv_freq.len(), c.head_dim / 2)?;
        for (i, l) in self.layers.iter().enumerate() {
            let n = |t: &str| format!("layer {i} {t}");
            check(&n("input_norm"), l.input_norm.len(), hidden)?;
            check(&n("q"), l.q.len(), hidden * q_width)?;
            check(&n("k"), l.k.len(), hidden * kv_width)?;
            check(&n("v"), l.v.len(), hidden * kv_width)?;
            check(&n("o"), l.o.len(), q_width * hidden)?;
            check(&n("post_norm"), l.post_norm.len(), hidden)?;
            check(&n("gate"), l.gate.len(), hidden * inter)?;
            check(&n("up"), l.up.len(), hidden * inter)?;
            check(&n("down"), l.down.len(), inter * hidden)?;
        }
        Ok(())
    }
}

impl ModelWeights {
    /// The weights in `stage_files` (every stage of `manifest`, in order).
    pub fn from_stage_files<B: AsRef<[u8]>>(
        manifest: &Manifest,
        stage_files: &[B],
    ) -> Result<Self> {
        if stage_files.len() != manifest.stages.len() || stage_files.is_empty() {
            return Err(GpuError::Weights(format!(
                "{} stage files for {} stages",
                stage_files.len(),
                manifest.stages.len()
            )));
        }
        let config = manifest.config.clone();
        let mut embed = None;
        let mut norm = None;
        let mut inv_freq = None;
        let mut tied = false;
        let mut layers = Vec::with_capacity(config.num_layers);
        for (meta, bytes) in manifest.stages.iter().zip(stage_files) {
            let stage = StageWeights::from_onnx(bytes.as_ref(), &config, meta)?;
            if stage.layer_start != layers.len() {
                return Err(GpuError::Weights(format!(
                    "stage {} starts at layer {}, after {} layers",
                    meta.index,
                    stage.layer_start,
                    layers.len()
                )));
            }
            embed = embed.or(stage.embed_tokens.map(|t| t.data));
            norm = norm.or(stage.norm.map(|t| t.data));
            inv_freq = inv_freq.or(Some(stage.rope_inv_freq.data));
            match stage.lm_head {
                Some(LmHead::Tied) => tied = true,
                Some(LmHead::Separate(_)) => {
                    return Err(GpuError::Weights(
                        "the LM head is not tied to the embeddings; only tied heads are supported"
                            .into(),
                    ))
                }
                None => {}
            }
            layers.extend(stage.layers.into_iter().map(|l| LayerWeights {
                input_norm: l.input_layernorm.data,
                q: l.q_proj.data,
                k: l.k_proj.data,
                v: l.v_proj.data,
                o: l.o_proj.data,
                post_norm: l.post_attention_layernorm.data,
                gate: l.gate_proj.data,
                up: l.up_proj.data,
                down: l.down_proj.data,
            }));
        }
        let missing = |what: &str| GpuError::Weights(format!("no stage holds {what}"));
        if !tied {
            return Err(missing("the LM head"));
        }
        let weights = ModelWeights {
            embed: embed.ok_or_else(|| missing("the token embedding"))?,
            norm: norm.ok_or_else(|| missing("the final norm"))?,
            inv_freq: inv_freq.ok_or_else(|| missing("the rotary frequencies"))?,
            layers,
            config,
        };
        weights.validate()?;
        Ok(weights)
    }

    /// The weights of a model read with [`engine::ModelDir::read`].
    #[cfg(not(target_arch = "wasm32"))]
    pub fn from_model_dir(dir: &engine::ModelDir) -> Result<Self> {
        Self::from_stage_files(&dir.manifest, &dir.stage_files)
    }
}
