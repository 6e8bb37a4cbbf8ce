//! The weights the GPU model uploads: f32 tensors of a llama decoder in the
//! layout of the ONNX stages (projections `[in, out]`, the embedding table
//! `[vocab, hidden]`, tied to the LM head).

use engine::ModelConfig;

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
