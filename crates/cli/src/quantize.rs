//! `quantize`: a model directory of ONNX `f32` stages written as q8 stages
//! (8-bit weights per block of 32, `engine::llama`), a model directory like
//! any other that `upload`, `chat` and the canisters take.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

use crate::options::resolve_model_dir;

#[derive(Args)]
pub struct QuantizeArgs {
    /// Model directory (or model root with `stages-N`).
    model: PathBuf,
    /// Quantize `<model>/stages-<N>`.
    #[arg(long)]
    stages: Option<usize>,
    /// Where to write the q8 model directory.
    #[arg(long)]
    out: PathBuf,
}

pub fn quantize(args: QuantizeArgs) -> Result<()> {
    let src = resolve_model_dir(&args.model, args.stages)?;
    let done = engine::llama::quantize_model_dir(&src, &args.out)
        .with_context(|| format!("quantizing {} into {}", src.display(), args.out.display()))?;
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    println!(
        "{}: {} stage(s), {:.1} MiB of f32 stages -> {:.1} MiB of q8 stages in {}",
        done.manifest.name,
        done.manifest.stages.len(),
        mib(done.source_bytes),
        mib(done.q8_bytes),
        args.out.display()
    );
    Ok(())
}
