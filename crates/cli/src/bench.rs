//! `bench`: the engine against onnxruntime, same ONNX, same prompts, one run.
//!
//! For every prompt both sides run one prefill of the whole prompt, then
//! greedy one-token decode steps with the KV cache; the best of `--repeat`
//! runs is kept. onnxruntime runs in `scripts/ort_bench.py` (the project's
//! venv) with the same number of threads as the engine (tract runs on one).
//! Figures are printed, never judged: timings depend on the machine.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args;
use engine::sampling::argmax;
use engine::ChatMessage;
use serde_json::Value;

use crate::options::ModelArgs;

#[derive(Args)]
pub struct BenchArgs {
    #[command(flatten)]
    model: ModelArgs,
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

pub fn bench(args: BenchArgs) -> Result<()> {
    if args.decode == 0 || args.repeat == 0 {
        bail!("--decode and --repeat must be at least 1");
    }
    let model = args.model.load()?;
    let m = &model.model.manifest;
    println!(
        "model {} ({} layers, {} stage(s)) from {}; load + optimise {:.2}s",
        m.name,
        m.config.num_layers,
        m.stages.len(),
        model.dir.display(),
        model.load_secs
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

    let onnx = ort_model_path(&model.dir, m.stages.len())?;
    let mut engine_total = Timing::default();
    let mut ort_total = Timing::default();
    let mut ort_peak_rss = 0u64;
    println!(
        "{:<6} {:>7} | {:>14} {:>14} | {:>14} {:>14} | same tokens",
        "prompt", "tokens", "engine prefill", "engine decode", "ort prefill", "ort decode"
    );
    for prompt in &prompts {
        let engine = run_engine(&model, &prompt.ids, args.decode, args.repeat)?;
        let ort = if args.no_ort {
            None
        } else {
            Some(run_ort(&args, &onnx, &prompt.ids)?)
        };
        let fmt = |t: Option<&Timing>, prefill: bool| match t {
            Some(t) if prefill => format!("{:.1} tok/s", t.prefill_rate()),
            Some(t) => format!("{:.1} tok/s", t.decode_rate()),
            None => "-".into(),
        };
        println!(
            "{:<6} {:>7} | {:>14} {:>14} | {:>14} {:>14} | {}",
            prompt.name,
            prompt.ids.len(),
            fmt(Some(&engine), true),
            fmt(Some(&engine), false),
            fmt(ort.as_ref().map(|o| &o.timing), true),
            fmt(ort.as_ref().map(|o| &o.timing), false),
            ort.as_ref()
                .map_or("-".to_string(), |o| (o.tokens == engine.tokens).to_string()),
        );
        add(&mut engine_total, &engine);
        if let Some(ort) = &ort {
            add(&mut ort_total, ort);
            ort_peak_rss = ort_peak_rss.max(ort.peak_rss_bytes);
        }
    }

    println!(
        "engine: prefill {:.1} tokens/s, decode {:.1} tokens/s (1 thread), peak RSS {}",
        engine_total.prefill_rate(),
        engine_total.decode_rate(),
        peak_rss().map_or("unknown".into(), mib)
    );
    if !args.no_ort {
        println!(
            "onnxruntime: prefill {:.1} tokens/s, decode {:.1} tokens/s ({} thread(s)), peak RSS {}",
            ort_total.prefill_rate(),
            ort_total.decode_rate(),
            args.ort_threads,
            mib(ort_peak_rss)
        );
        println!(
            "ratio engine/onnxruntime: prefill {:.2}x, decode {:.2}x",
            engine_total.prefill_rate() / ort_total.prefill_rate(),
            engine_total.decode_rate() / ort_total.decode_rate()
        );
    }
    Ok(())
}

fn add(total: &mut Timing, t: &Timing) {
    total.prefill_tokens += t.prefill_tokens;
    total.prefill_s += t.prefill_s;
    total.decode_tokens += t.decode_tokens;
    total.decode_s += t.decode_s;
}

fn run_engine(
    model: &crate::options::LoadedModel,
    ids: &[u32],
    decode: usize,
    repeat: usize,
) -> Result<Timing> {
    let mut best = Timing {
        prefill_s: f64::INFINITY,
        decode_s: f64::INFINITY,
        ..Timing::default()
    };
    for _ in 0..repeat {
        let mut seq = model.pipeline.new_sequence();
        let started = Instant::now();
        let logits = model.pipeline.prefill(&mut seq, ids)?;
        let prefill_s = started.elapsed().as_secs_f64();
        let mut tokens = vec![argmax(&logits)];
        let started = Instant::now();
        for _ in 1..decode {
            let last = tokens[tokens.len() - 1];
            let logits = model.pipeline.decode(&mut seq, last)?;
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
