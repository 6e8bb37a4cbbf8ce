//! A llama model with seeded-random weights in the shape of a real one, as
//! a one-stage q8 model directory that `icllm replica-bench` deploys: to
//! measure what a larger model costs in the canisters without downloading
//! it (`scripts/scaling.sh` runs it for SmolLM2-360M and 1.7B).
//!
//! The weights are uniform with the spread of a trained model's (standard
//! deviation 0.02), the norms 1: the tokens are noise, the cost is the real
//! one, because every kernel does the same work whatever the values. The
//! tokenizer, special tokens and chat template come from `--like`, a model
//! directory of the same vocabulary (SmolLM2-135M's for the SmolLM2 family).
//!
//! ```sh
//! cargo run --release -p cli --example random_llama -- --shape smollm2-360m \
//!     --like models/smollm2-135m-instruct/stages-1 --out /tmp/random-360m [--layers 4] [--seed 7]
//! ```

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use engine::llama::{F32Tensor, LayerWeights, LlamaStage, LmHead, StageWeights, WeightFormat};
use engine::manifest::{
    chunk_file, past_name, present_name, sha256_hex, ATTENTION_MASK, INPUT_IDS, LOGITS,
    POSITION_IDS,
};
use engine::{Manifest, ModelConfig, StageFormat, StageMeta};

/// The published configurations of the SmolLM2 family (Hugging Face
/// `config.json` of each model).
fn shape(name: &str) -> Result<ModelConfig> {
    let smollm2 = |layers, hidden, heads, kv_heads, intermediate, rope_theta| ModelConfig {
        num_layers: layers,
        hidden_size: hidden,
        num_attention_heads: heads,
        num_kv_heads: kv_heads,
        head_dim: hidden / heads,
        intermediate_size: intermediate,
        vocab_size: 49152,
        max_position_embeddings: 8192,
        rope_theta,
        rms_norm_eps: 1e-5,
        tie_word_embeddings: true,
    };
    Ok(match name {
        "smollm2-135m" => smollm2(30, 576, 9, 3, 1536, 100_000.0),
        "smollm2-360m" => smollm2(32, 960, 15, 5, 2560, 100_000.0),
        "smollm2-1.7b" => smollm2(24, 2048, 32, 32, 8192, 130_000.0),
        _ => bail!("unknown shape {name:?}: smollm2-135m, smollm2-360m or smollm2-1.7b"),
    })
}

/// xorshift64*: the same weights for the same seed on every machine.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// Uniform in `[-1, 1)`.
    fn uniform(&mut self) -> f32 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let bits = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 40;
        bits as f32 / (1u64 << 23) as f32 - 1.0
    }

    /// `[rows, cols]` of uniform values with standard deviation 0.02.
    fn matrix(&mut self, rows: usize, cols: usize) -> F32Tensor {
        let spread = 0.02 * 3f32.sqrt();
        F32Tensor {
            shape: vec![rows, cols],
            data: (0..rows * cols).map(|_| self.uniform() * spread).collect(),
        }
    }
}

fn ones(n: usize) -> F32Tensor {
    F32Tensor {
        shape: vec![n],
        data: vec![1.0; n],
    }
}

struct Args {
    shape: String,
    layers: Option<usize>,
    like: PathBuf,
    out: PathBuf,
    seed: u64,
}

fn parse_args() -> Result<Args> {
    let usage =
        "usage: random_llama --shape NAME --like MODEL_DIR --out DIR [--layers N] [--seed S]";
    let mut args = std::env::args().skip(1);
    let (mut shape, mut layers, mut like, mut out, mut seed) = (None, None, None, None, 0);
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .with_context(|| format!("{flag} needs a value; {usage}"))?;
        match flag.as_str() {
            "--shape" => shape = Some(value),
            "--layers" => layers = Some(value.parse().context("--layers")?),
            "--like" => like = Some(PathBuf::from(value)),
            "--out" => out = Some(PathBuf::from(value)),
            "--seed" => seed = value.parse().context("--seed")?,
            _ => bail!("unknown flag {flag}; {usage}"),
        }
    }
    Ok(Args {
        shape: shape.context(usage)?,
        layers,
        like: like.context(usage)?,
        out: out.context(usage)?,
        seed,
    })
}

/// The stage entry of a one-stage model of `layers` layers (size, hash and
/// chunks filled in once the file exists).
fn one_stage(layers: usize) -> StageMeta {
    let mut inputs = vec![
        INPUT_IDS.to_string(),
        ATTENTION_MASK.to_string(),
        POSITION_IDS.to_string(),
    ];
    let mut outputs = vec![LOGITS.to_string()];
    for l in 0..layers {
        for kind in ["key", "value"] {
            inputs.push(past_name(l, kind));
            outputs.push(present_name(l, kind));
        }
    }
    StageMeta {
        index: 0,
        file: "stage-0.q8".into(),
        format: StageFormat::Q8,
        layer_start: 0,
        layer_end: layers,
        inputs,
        outputs,
        size: 0,
        sha256: String::new(),
        chunks: Vec::new(),
    }
}

fn random_weights(c: &ModelConfig, rng: &mut Rng) -> StageWeights {
    let (h, q, kv, i) = (
        c.hidden_size,
        c.num_attention_heads * c.head_dim,
        c.num_kv_heads * c.head_dim,
        c.intermediate_size,
    );
    let layers = (0..c.num_layers)
        .map(|_| LayerWeights {
            input_layernorm: ones(h),
            q_proj: rng.matrix(h, q),
            k_proj: rng.matrix(h, kv),
            v_proj: rng.matrix(h, kv),
            o_proj: rng.matrix(q, h),
            post_attention_layernorm: ones(h),
            gate_proj: rng.matrix(h, i),
            up_proj: rng.matrix(h, i),
            down_proj: rng.matrix(i, h),
        })
        .collect();
    let half = c.head_dim / 2;
    let rope_inv_freq = F32Tensor {
        shape: vec![half],
        data: (0..half)
            .map(|j| c.rope_theta.powf(-((2 * j) as f64) / c.head_dim as f64) as f32)
            .collect(),
    };
    StageWeights {
        layer_start: 0,
        embed_tokens: Some(rng.matrix(c.vocab_size, h)),
        layers,
        norm: Some(ones(h)),
        lm_head: Some(LmHead::Tied),
        rope_inv_freq,
    }
}

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}

fn main() -> Result<()> {
    let args = parse_args()?;
    let mut config = shape(&args.shape)?;
    if let Some(layers) = args.layers {
        if layers == 0 || layers > config.num_layers {
            bail!("--layers must be 1..={}", config.num_layers);
        }
        config.num_layers = layers;
    }
    let like_path = args.like.join("manifest.json");
    let like =
        std::fs::read(&like_path).with_context(|| format!("reading {}", like_path.display()))?;
    let like = Manifest::from_json(&like)?;
    if like.config.vocab_size != config.vocab_size {
        bail!(
            "{} has a vocabulary of {}, the shape {}",
            args.like.display(),
            like.config.vocab_size,
            config.vocab_size
        );
    }

    let meta = one_stage(config.num_layers);
    let weights = random_weights(&config, &mut Rng::new(args.seed));
    let stage = LlamaStage::from_weights(weights, &config, &meta, WeightFormat::Q8)?;
    let q8 = stage.to_q8_file();
    drop(stage);

    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let mut manifest = like.clone();
    manifest.name = format!("random-{}-{}l", args.shape, config.num_layers);
    manifest.config = config;
    manifest.stages = vec![StageMeta {
        size: q8.len() as u64,
        sha256: sha256_hex(&q8),
        chunks: chunk_file(&q8, manifest.chunk_size),
        ..meta
    }];
    write(&args.out.join("stage-0.q8"), &q8)?;
    let tokenizer = std::fs::read(args.like.join(&like.tokenizer.file))
        .context("reading the tokenizer of --like")?;
    write(&args.out.join(&manifest.tokenizer.file), &tokenizer)?;
    let json = manifest.to_json()?;
    Manifest::from_json(&json)?;
    write(&args.out.join("manifest.json"), &json)?;
    println!(
        "{}: {} layers, {:.1} MiB q8 stage in {}",
        manifest.name,
        manifest.config.num_layers,
        q8.len() as f64 / (1 << 20) as f64,
        args.out.display()
    );
    Ok(())
}
