//! `bench`: the engine's `f32` pass (tract), its int8 pass
//! (`engine::llama`, 8-bit weights) and onnxruntime, same model, same
//! prompts, one run.
//!
//! `--model` is the `f32` model (ONNX stages); the int8 model is quantised
//! from it in memory, or read from `--q8 DIR` (what `icllm quantize`
//! wrote). For every prompt each side runs one prefill of the whole prompt,
//! then greedy one-token decode steps with the KV cache; the best of
//! `--repeat` runs is kept. onnxruntime runs in `scripts/ort_bench.py` (the
//! project's venv) with the same number of threads as the engine (one).
//! Figures are printed, never judged: timings depend on the machine.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args;
use engine::llama::{LlamaStage, StageWeights, WeightFormat};
use engine::sampling::argmax;
use engine::{ChatMessage, ModelDir, Pipeline, Stage, StageFormat};
use serde_json::Value;

use crate::options::ModelArgs;

#[derive(Args)]
pub struct BenchArgs {
    /// The `f32` model (ONNX stages).
    #[command(flatten)]
    model: ModelArgs,
    /// The int8 model directory (`icllm quantize`); default: the `f32`
    /// model quantised in memory.
    #[arg(long)]
    q8: Option<PathBuf>,
    /// Tokens to generate per prompt (the first comes from the prefill).
    #[arg(long, default_value_t = 32)]
    decode: usize,
    /// Keep the best of this many runs.
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    /// Python with onnxruntime (the venv made by scripts/setup_venv.sh).
    #[arg(long, default_value = ".venv/bin/python")]
    python: PathBuf,
    /// onnxruntime intra-op threads (the engine uses one).
    #[arg(long, default_value_t = 1)]
    ort_threads: usize,
    /// Skip onnxruntime (engine figures only).
    #[arg(long)]
    no_ort: bool,
}

struct Prompt {
    name: &'static str,
    ids: Vec<u32>,
}

#[derive(Default)]
struct Timing {
    prefill_tokens: usize,
    prefill_s: f64,
    decode_tokens: usize,
    decode_s: f64,
    tokens: Vec<u32>,
}

impl Timing {
    fn prefill_rate(&self) -> f64 {
        self.prefill_tokens as f64 / self.prefill_s.max(1e-12)
    }
    fn decode_rate(&self) -> f64 {
        self.decode_tokens as f64 / self.decode_s.max(1e-12)
    }
}

const LONG_PROMPT: &str = "The Internet Computer is a blockchain that hosts smart contracts, \
called canisters, which bundle code and state. Canisters are WebAssembly modules; each message \
they execute is metered in instructions, and a single update message may execute at most a few \
tens of billions of them. Running a language model inside a canister therefore means splitting \
the work: the prompt is processed first, then every new token is produced by its own message, \
and the key and value caches of the attention layers stay in the canister's memory between \
messages. In this article we explain how";

/// The int8 pipeline: `--q8 DIR` read from disk, or every stage of the
/// `f32` model quantised in memory; with its source, the seconds it took
/// and the bytes of its weights.
fn int8_pipeline(args: &BenchArgs, f32_model: &ModelDir) -> Result<(Pipeline, String, f64, usize)> {
    let started = Instant::now();
    let config = &f32_model.manifest.config;
    let (stages, source) = match &args.q8 {
        Some(dir) => {
            let q8 = ModelDir::read(dir).with_context(|| format!("reading {}", dir.display()))?;
            if q8.manifest.config != *config {
                bail!(
                    "{} is not a quantised {}: their configs differ",
                    dir.display(),
                    f32_model.manifest.name
                );
            }
            if q8.manifest.tokenizer.sha256 != f32_model.manifest.tokenizer.sha256 {
                bail!("{} has another tokenizer than the f32 model", dir.display());
            }
            let stages = q8
                .manifest
                .stages
                .iter()
                .zip(q8.stage_files)
                .map(|(meta, bytes)| {
                    if meta.format != StageFormat::Q8 {
                        bail!("{}: stage {} is not q8", dir.display(), meta.index);
                    }
                    Ok(LlamaStage::from_q8_file(Arc::new(bytes), config, meta)?)
                })
                .collect::<Result<Vec<_>>>()?;
            (stages, format!("read from {}", dir.display()))
        }
        None => {
            let stages = f32_model
                .manifest
                .stages
                .iter()
                .zip(&f32_model.stage_files)
                .map(|(meta, bytes)| {
                    let weights = StageWeights::from_onnx(bytes, config, meta)?;
                    LlamaStage::from_weights(weights, config, meta, WeightFormat::Q8)
                })
                .collect::<engine::Result<Vec<_>>>()?;
            (stages, "quantised in memory".into())
        }
    };
    let bytes = stages.iter().map(LlamaStage::size_bytes).sum();
    let stages = stages.into_iter().map(Stage::from_llama).collect();
    let pipeline = Pipeline::from_stages(config.clone(), stages)?;
    Ok((pipeline, source, started.elapsed().as_secs_f64(), bytes))
}

/// The three sides' timings summed over the prompts.
#[derive(Default)]
struct Totals {
    f32: Timing,
    int8: Timing,
    ort: Timing,
}

pub fn bench(args: BenchArgs) -> Result<()> {
    if args.decode == 0 || args.repeat == 0 {
        bail!("--decode and --repeat must be at least 1");
    }
    let model = args.model.load()?;
    let m = &model.model.manifest;
    if let Some(s) = m.stages.iter().find(|s| s.format != StageFormat::OnnxF32) {
        bail!(
            "{}: stage {} is {:?}, not ONNX f32: give the f32 model with --model and the q8 one \
             with --q8",
            model.dir.display(),
            s.index,
            s.format
        );
    }
    println!(
        "model {} ({} layers, {} stage(s)) from {}; f32 load + optimise {:.2}s",
        m.name,
        m.config.num_layers,
        m.stages.len(),
        model.dir.display(),
        model.load_secs
    );
    let (int8, int8_source, int8_secs, int8_bytes) = int8_pipeline(&args, &model.model)?;
    println!(
        "int8 model {int8_source} in {int8_secs:.2}s: {:.1} MiB of weights",
        int8_bytes as f64 / (1 << 20) as f64
    );

    let chat = model
        .tokenizer
        .apply_chat_template(&[ChatMessage::user("What is the capital of France?")], true)?;
    let prompts = [
        Prompt {
            name: "chat",
            ids: model.tokenizer.encode(&chat)?,
        },
        Prompt {
            name: "long",
            ids: model.tokenizer.encode(LONG_PROMPT)?,
        },
    ];

    let onnx = if args.no_ort {
        None
    } else {
        Some(ort_model_path(&model.dir, m.stages.len())?)
    };
    let mut totals = Totals::default();
    let mut ort_peak_rss = 0u64;
    println!("tokens/s, prefill | decode; \"agree\": greedy tokens equal to the f32 engine's");
    println!(
        "{:<6} {:>6} | {:>17} | {:>17} {:>7} | {:>17} {:>7}",
        "prompt", "tokens", "f32 (tract)", "int8 (own)", "agree", "onnxruntime", "agree"
    );
    for prompt in &prompts {
        let f32 = run_engine(&model.pipeline, &prompt.ids, args.decode, args.repeat)?;
        let int8 = run_engine(&int8, &prompt.ids, args.decode, args.repeat)?;
        let ort = match &onnx {
            Some(onnx) => Some(run_ort(&args, onnx, &prompt.ids)?),
            None => None,
        };
        let rates = |t: &Timing| format!("{:.1} | {:.1}", t.prefill_rate(), t.decode_rate());
        println!(
            "{:<6} {:>6} | {:>17} | {:>17} {:>7} | {:>17} {:>7}",
            prompt.name,
            prompt.ids.len(),
            rates(&f32),
            rates(&int8),
            agreement(&int8.tokens, &f32.tokens),
            ort.as_ref().map_or("-".into(), |o| rates(o)),
            ort.as_ref()
                .map_or("-".into(), |o| agreement(&o.tokens, &f32.tokens)),
        );
        add(&mut totals.f32, &f32);
        add(&mut totals.int8, &int8);
        if let Some(ort) = &ort {
            add(&mut totals.ort, ort);
            ort_peak_rss = ort_peak_rss.max(ort.peak_rss_bytes);
        }
    }

    let line = |name: &str, t: &Timing| {
        println!(
            "{name}: prefill {:.1} tokens/s, decode {:.1} tokens/s",
            t.prefill_rate(),
            t.decode_rate()
        );
    };
    line("f32 engine (tract, 1 thread)", &totals.f32);
    line("int8 engine (engine::llama q8, 1 thread)", &totals.int8);
    println!(
        "engine process peak RSS (both engines loaded): {}",
        peak_rss().map_or("unknown".into(), mib)
    );
    let ratio = |name: &str, a: &Timing, b: &Timing| {
        println!(
            "ratio {name}: prefill {:.2}x, decode {:.2}x",
            a.prefill_rate() / b.prefill_rate(),
            a.decode_rate() / b.decode_rate()
        );
    };
    ratio("int8/f32", &totals.int8, &totals.f32);
    if !args.no_ort {
        line(
            &format!("onnxruntime ({} thread(s))", args.ort_threads),
            &totals.ort,
        );
        println!("onnxruntime peak RSS: {}", mib(ort_peak_rss));
        ratio("f32/onnxruntime", &totals.f32, &totals.ort);
        ratio("int8/onnxruntime", &totals.int8, &totals.ort);
    }
    Ok(())
}

/// `n/m`: how many of the first tokens equal the reference, before the
/// first difference.
fn agreement(tokens: &[u32], reference: &[u32]) -> String {
    let same = tokens
        .iter()
        .zip(reference)
        .take_while(|(a, b)| a == b)
        .count();
    format!("{same}/{}", reference.len())
}

fn add(total: &mut Timing, t: &Timing) {
    total.prefill_tokens += t.prefill_tokens;
    total.prefill_s += t.prefill_s;
    total.decode_tokens += t.decode_tokens;
    total.decode_s += t.decode_s;
}

fn run_engine(pipeline: &Pipeline, ids: &[u32], decode: usize, repeat: usize) -> Result<Timing> {
    let mut best = Timing {
        prefill_s: f64::INFINITY,
        decode_s: f64::INFINITY,
        ..Timing::default()
    };
    for _ in 0..repeat {
        let mut seq = pipeline.new_sequence();
        let started = Instant::now();
        let logits = pipeline.prefill(&mut seq, ids)?;
        let prefill_s = started.elapsed().as_secs_f64();
        let mut tokens = vec![argmax(&logits)];
        let started = Instant::now();
        for _ in 1..decode {
            let last = tokens[tokens.len() - 1];
            let logits = pipeline.decode(&mut seq, last)?;
            tokens.push(argmax(&logits));
        }
        let decode_s = started.elapsed().as_secs_f64();
        best.prefill_s = best.prefill_s.min(prefill_s);
        best.decode_s = best.decode_s.min(decode_s);
        best.tokens = tokens;
    }
    best.prefill_tokens = ids.len();
    best.decode_tokens = decode - 1;
    Ok(best)
}

/// The unsplit ONNX of the model: the one stage of a one-stage cut, or the
/// `source/model.onnx` beside a multi-stage cut.
fn ort_model_path(dir: &Path, stages: usize) -> Result<PathBuf> {
    if stages == 1 {
        return Ok(dir.join("stage-0.onnx"));
    }
    let source = dir
        .parent()
        .map(|root| root.join("source").join("model.onnx"))
        .filter(|p| p.is_file());
    source.with_context(|| {
        format!(
            "{} has {stages} stages and no ../source/model.onnx for onnxruntime; use --no-ort",
            dir.display()
        )
    })
}

struct OrtRun {
    timing: Timing,
    peak_rss_bytes: u64,
}

impl std::ops::Deref for OrtRun {
    type Target = Timing;
    fn deref(&self) -> &Timing {
        &self.timing
    }
}

fn run_ort(args: &BenchArgs, onnx: &Path, ids: &[u32]) -> Result<OrtRun> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/ort_bench.py");
    let ids_text: Vec<String> = ids.iter().map(u32::to_string).collect();
    let output = Command::new(&args.python)
        .arg(&script)
        .arg(onnx)
        .arg("--ids")
        .arg(ids_text.join(","))
        .arg("--decode")
        .arg(args.decode.to_string())
        .arg("--threads")
        .arg(args.ort_threads.to_string())
        .arg("--repeat")
        .arg(args.repeat.to_string())
        .output()
        .with_context(|| {
            format!(
                "running {} (make it with scripts/setup_venv.sh, or pass --no-ort)",
                args.python.display()
            )
        })?;
    if !output.status.success() {
        bail!(
            "ort_bench.py failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let v: Value = serde_json::from_slice(&output.stdout).context("ort_bench.py output")?;
    let num = |k: &str| {
        v[k].as_f64()
            .with_context(|| format!("ort_bench.py: no {k}"))
    };
    Ok(OrtRun {
        timing: Timing {
            prefill_tokens: num("prefill_tokens")? as usize,
            prefill_s: num("prefill_s")?,
            decode_tokens: num("decode_tokens")? as usize,
            decode_s: num("decode_s")?,
            tokens: v["tokens"]
                .as_array()
                .context("ort_bench.py: no tokens")?
                .iter()
                .filter_map(|t| t.as_u64().map(|t| t as u32))
                .collect(),
        },
        peak_rss_bytes: num("peak_rss_bytes")? as u64,
    })
}

/// Peak resident set of this process (VmHWM), where the OS tells it.
fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

fn mib(bytes: u64) -> String {
    format!("{:.0} MiB", bytes as f64 / (1024.0 * 1024.0))
}
