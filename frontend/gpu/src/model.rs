//! [`GpuModel`]: the whole decoder on the GPU. Weights are uploaded once;
//! the KV cache stays on the GPU and grows in place; each call runs a chunk
//! of tokens through every layer in one submission and reads back only the
//! logits asked for.

use engine::ModelConfig;

use crate::context::Gpu;
use crate::error::{GpuError, Result};
use crate::ops::{
    Add, Attention, AttentionShape, Embedding, KvShape, KvWrite, Linear, LmHead, RmsNorm, Rope,
    RopeTables, SwiGlu,
};
use crate::weights::ModelWeights;

/// Sizes fixed when the model is uploaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelOptions {
    /// Positions the KV cache holds (at most the model's
    /// `max_position_embeddings`).
    pub context: usize,
    /// Tokens run together; longer prompts go in chunks of this many.
    pub batch: usize,
}

impl Default for ModelOptions {
    fn default() -> Self {
        ModelOptions {
            context: 2048,
            batch: 32,
        }
    }
}

/// Rows of logits, `[rows, vocab]` row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Logits {
    pub rows: usize,
    pub vocab: usize,
    pub values: Vec<f32>,
}

impl Logits {
    /// Row `i` (`None` past the end).
    pub fn row(&self, i: usize) -> Option<&[f32]> {
        (i < self.rows).then(|| &self.values[i * self.vocab..(i + 1) * self.vocab])
    }

    /// The last row.
    pub fn last(&self) -> &[f32] {
        &self.values[self.values.len() - self.vocab..]
    }
}

#[derive(Debug)]
struct Kernels {
    embedding: Embedding,
    rms_norm: RmsNorm,
    linear: Linear,
    rope: Rope,
    kv_write: KvWrite,
    attention: Attention,
    swiglu: SwiGlu,
    add: Add,
    lm_head: LmHead,
}

#[derive(Debug)]
struct Layer {
    input_norm: wgpu::Buffer,
    q: wgpu::Buffer,
    k: wgpu::Buffer,
    v: wgpu::Buffer,
    o: wgpu::Buffer,
    post_norm: wgpu::Buffer,
    gate: wgpu::Buffer,
    up: wgpu::Buffer,
    down: wgpu::Buffer,
    k_cache: wgpu::Buffer,
    v_cache: wgpu::Buffer,
}

/// Activations for one chunk of `batch` rows.
#[derive(Debug)]
struct Activations {
    ids: wgpu::Buffer,
    x: wgpu::Buffer,
    xn: wgpu::Buffer,
    q: wgpu::Buffer,
    k: wgpu::Buffer,
    v: wgpu::Buffer,
    attn: wgpu::Buffer,
    tmp: wgpu::Buffer,
    gate: wgpu::Buffer,
    up: wgpu::Buffer,
    act: wgpu::Buffer,
    scores: wgpu::Buffer,
    logits: wgpu::Buffer,
}

/// A llama decoder on the GPU with its KV cache.
#[derive(Debug)]
pub struct GpuModel {
    gpu: Gpu,
    config: ModelConfig,
    options: ModelOptions,
    kernels: Kernels,
    embed: wgpu::Buffer,
    norm: wgpu::Buffer,
    rope: RopeTables,
    layers: Vec<Layer>,
    act: Activations,
    position: usize,
}

impl GpuModel {
    /// Checks the weights, compiles the kernels and uploads everything.
    pub fn new(gpu: &Gpu, weights: &ModelWeights, options: ModelOptions) -> Result<Self> {
        weights.validate()?;
        let c = weights.config.clone();
        if options.batch == 0 || options.context == 0 {
            return Err(GpuError::Weights(format!(
                "batch {} and context {} must be positive",
                options.batch, options.context
            )));
        }
        if options.context > c.max_position_embeddings {
            return Err(GpuError::Weights(format!(
                "context {} is over the model's {} positions",
                options.context, c.max_position_embeddings
            )));
        }
        let kernels = Kernels {
            embedding: Embedding::new(gpu),
            rms_norm: RmsNorm::new(gpu),
            linear: Linear::new(gpu),
            rope: Rope::new(gpu),
            kv_write: KvWrite::new(gpu),
            attention: Attention::new(gpu),
            swiglu: SwiGlu::new(gpu),
            add: Add::new(gpu),
            lm_head: LmHead::new(gpu),
        };
        let kv = Self::kv_shape_of(&c, options.context);
        let mut layers = Vec::with_capacity(weights.layers.len());
        for l in &weights.layers {
            layers.push(Layer {
                input_norm: gpu.upload("input_norm", &l.input_norm)?,
                q: gpu.upload("q_proj", &l.q)?,
                k: gpu.upload("k_proj", &l.k)?,
                v: gpu.upload("v_proj", &l.v)?,
                o: gpu.upload("o_proj", &l.o)?,
                post_norm: gpu.upload("post_attention_norm", &l.post_norm)?,
                gate: gpu.upload("gate_proj", &l.gate)?,
                up: gpu.upload("up_proj", &l.up)?,
                down: gpu.upload("down_proj", &l.down)?,
                k_cache: gpu.storage("k_cache", kv.len())?,
                v_cache: gpu.storage("v_cache", kv.len())?,
            });
        }
        let b = options.batch;
        let q_width = c.num_attention_heads * c.head_dim;
        let kv_width = c.num_kv_heads * c.head_dim;
        let shape = AttentionShape {
            heads: c.num_attention_heads,
            kv,
        };
        let act = Activations {
            ids: gpu.storage("ids", b)?,
            x: gpu.storage("x", b * c.hidden_size)?,
            xn: gpu.storage("xn", b * c.hidden_size)?,
            q: gpu.storage("q", b * q_width)?,
            k: gpu.storage("k", b * kv_width)?,
            v: gpu.storage("v", b * kv_width)?,
            attn: gpu.storage("attn", b * q_width)?,
            tmp: gpu.storage("tmp", b * c.hidden_size)?,
            gate: gpu.storage("gate", b * c.intermediate_size)?,
            up: gpu.storage("up", b * c.intermediate_size)?,
            act: gpu.storage("act", b * c.intermediate_size)?,
            scores: gpu.storage("scores", Attention::scratch_len(b, shape))?,
            logits: gpu.storage("logits", b * c.vocab_size)?,
        };
        Ok(GpuModel {
            gpu: gpu.clone(),
            kernels,
            embed: gpu.upload("embed_tokens", &weights.embed)?,
            norm: gpu.upload("norm", &weights.norm)?,
            rope: RopeTables::new(gpu, &weights.inv_freq, options.context)?,
            layers,
            act,
            position: 0,
            options,
            config: c,
        })
    }

    fn kv_shape_of(c: &ModelConfig, capacity: usize) -> KvShape {
        KvShape {
            kv_heads: c.num_kv_heads,
            head_dim: c.head_dim,
            capacity,
        }
    }

    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    pub fn options(&self) -> ModelOptions {
        self.options
    }

    pub fn gpu(&self) -> &Gpu {
        &self.gpu
    }

    /// Tokens in the KV cache (the position of the next token).
    pub fn position(&self) -> usize {
        self.position
    }

    /// Empties the KV cache (its contents are overwritten as it refills).
    pub fn reset(&mut self) {
        self.position = 0;
    }

    /// Runs the prompt; returns the logits of its last position.
    pub async fn prefill(&mut self, tokens: &[u32]) -> Result<Vec<f32>> {
        Ok(self.forward(tokens, false).await?.values)
    }

    /// Runs one token; returns its logits.
    pub async fn decode(&mut self, token: u32) -> Result<Vec<f32>> {
        Ok(self.forward(&[token], false).await?.values)
    }

    /// Runs `tokens` at the next positions, appending to the KV cache, and
    /// returns the logits of every position (`all_logits`) or of the last.
    /// On error the position does not move.
    pub async fn forward(&mut self, tokens: &[u32], all_logits: bool) -> Result<Logits> {
        let c = &self.config;
        if tokens.is_empty() {
            return Err(GpuError::EmptyInput);
        }
        if let Some(&id) = tokens.iter().find(|&&t| t as usize >= c.vocab_size) {
            return Err(GpuError::TokenOutOfRange {
                id,
                vocab: c.vocab_size,
            });
        }
        let needed = self.position + tokens.len();
        if needed > self.options.context {
            return Err(GpuError::ContextFull {
                needed,
                capacity: self.options.context,
            });
        }
        let vocab = c.vocab_size;
        let mut values = Vec::with_capacity(if all_logits {
            tokens.len() * vocab
        } else {
            vocab
        });
        let mut start = self.position;
        let chunks: Vec<&[u32]> = tokens.chunks(self.options.batch).collect();
        for (i, chunk) in chunks.iter().enumerate() {
            let last = i + 1 == chunks.len();
            let head_rows = if all_logits {
                Some((0, chunk.len()))
            } else if last {
                Some((chunk.len() - 1, 1))
            } else {
                None
            };
            self.run_chunk(chunk, start, head_rows)?;
            if let Some((_, rows)) = head_rows {
                let row_values = self
                    .gpu
                    .read_f32("logits", &self.act.logits, 0, rows * vocab)
                    .await?;
                values.extend_from_slice(&row_values);
            }
            start += chunk.len();
        }
        self.position = needed;
        Ok(Logits {
            rows: values.len() / vocab,
            vocab,
            values,
        })
    }

    /// Records and submits one chunk through every layer, then the LM head
    /// over `head_rows` (first row, count) of it.
    fn run_chunk(
        &self,
        chunk: &[u32],
        start: usize,
        head_rows: Option<(usize, usize)>,
    ) -> Result<()> {
        let gpu = &self.gpu;
        let c = &self.config;
        let k = &self.kernels;
        let a = &self.act;
        let rows = chunk.len();
        let hidden = c.hidden_size;
        let heads = c.num_attention_heads;
        let kv_heads = c.num_kv_heads;
        let hd = c.head_dim;
        let q_width = heads * hd;
        let kv_width = kv_heads * hd;
        let inter = c.intermediate_size;
        let eps = c.rms_norm_eps as f32;
        let kv = Self::kv_shape_of(c, self.options.context);
        let shape = AttentionShape { heads, kv };

        gpu.write(&a.ids, chunk);
        let mut e = gpu.encoder("forward");
        k.embedding.encode(
            gpu,
            &mut e,
            rows,
            hidden,
            c.vocab_size,
            &a.ids,
            &self.embed,
            &a.x,
        )?;
        for l in &self.layers {
            k.rms_norm
                .encode(gpu, &mut e, rows, hidden, eps, &a.x, &l.input_norm, &a.xn)?;
            k.linear
                .encode(gpu, &mut e, rows, hidden, q_width, &a.xn, &l.q, &a.q)?;
            k.linear
                .encode(gpu, &mut e, rows, hidden, kv_width, &a.xn, &l.k, &a.k)?;
            k.linear
                .encode(gpu, &mut e, rows, hidden, kv_width, &a.xn, &l.v, &a.v)?;
            k.rope
                .encode(gpu, &mut e, rows, heads, hd, start, &self.rope, &a.q)?;
            k.rope
                .encode(gpu, &mut e, rows, kv_heads, hd, start, &self.rope, &a.k)?;
            k.kv_write
                .encode(gpu, &mut e, rows, start, kv, &a.k, &l.k_cache)?;
            k.kv_write
                .encode(gpu, &mut e, rows, start, kv, &a.v, &l.v_cache)?;
            k.attention.encode(
                gpu, &mut e, rows, start, shape, &a.q, &l.k_cache, &l.v_cache, &a.scores, &a.attn,
            )?;
            k.linear
                .encode(gpu, &mut e, rows, q_width, hidden, &a.attn, &l.o, &a.tmp)?;
            k.add.encode(gpu, &mut e, rows * hidden, &a.x, &a.tmp)?;
            k.rms_norm
                .encode(gpu, &mut e, rows, hidden, eps, &a.x, &l.post_norm, &a.xn)?;
            k.linear
                .encode(gpu, &mut e, rows, hidden, inter, &a.xn, &l.gate, &a.gate)?;
            k.linear
                .encode(gpu, &mut e, rows, hidden, inter, &a.xn, &l.up, &a.up)?;
            k.swiglu
                .encode(gpu, &mut e, rows * inter, &a.gate, &a.up, &a.act)?;
            k.linear
                .encode(gpu, &mut e, rows, inter, hidden, &a.act, &l.down, &a.tmp)?;
            k.add.encode(gpu, &mut e, rows * hidden, &a.x, &a.tmp)?;
        }
        if let Some((first, count)) = head_rows {
            k.rms_norm
                .encode(gpu, &mut e, rows, hidden, eps, &a.x, &self.norm, &a.xn)?;
            k.lm_head.encode(
                gpu,
                &mut e,
                first,
                count,
                hidden,
                c.vocab_size,
                &a.xn,
                &self.embed,
                &a.logits,
            )?;
        }
        gpu.submit(e);
        Ok(())
    }
}
