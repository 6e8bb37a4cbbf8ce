//! `inspect`: print a manifest, verify every hash.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use engine::Manifest;

use crate::options::resolve_model_dir;

#[derive(Args)]
pub struct InspectArgs {
    /// Model directory (or model root with `stages-N`).
    model: PathBuf,
    /// Inspect `<model>/stages-<N>`.
    #[arg(long)]
    stages: Option<usize>,
}

pub fn inspect(args: InspectArgs) -> Result<()> {
    let dir = resolve_model_dir(&args.model, args.stages)?;
    let manifest_path = dir.join("manifest.json");
    let bytes = std::fs::read(&manifest_path)
        .with_context(|| format!("reading {}", manifest_path.display()))?;
    let manifest = Manifest::from_json(&bytes)?;
    let c = &manifest.config;
    println!("model         {} ({})", manifest.name, dir.display());
    println!("architecture  {}", manifest.architecture);
    println!(
        "config        {} layers, hidden {}, {} heads ({} kv) x {}, ffn {}, vocab {}, context {}, rope θ {}",
        c.num_layers,
        c.hidden_size,
        c.num_attention_heads,
        c.num_kv_heads,
        c.head_dim,
        c.intermediate_size,
        c.vocab_size,
        c.max_position_embeddings,
        c.rope_theta
    );
    let tokens = |t: &Option<engine::SpecialToken>| {
        t.as_ref()
            .map_or("-".to_string(), |t| format!("{} ({})", t.text, t.id))
    };
    let eos: Vec<String> = manifest
        .special_tokens
        .eos
        .iter()
        .map(|t| format!("{} ({})", t.text, t.id))
        .collect();
    println!(
        "special       bos {}, eos [{}], pad {}",
        tokens(&manifest.special_tokens.bos),
        eos.join(", "),
        tokens(&manifest.special_tokens.pad)
    );
    println!(
        "chat template {}",
        manifest
            .chat_template
            .as_ref()
            .map_or("none".to_string(), |t| format!("{} bytes", t.len()))
    );

    let tokenizer = std::fs::read(dir.join(&manifest.tokenizer.file))?;
    manifest.verify_tokenizer(&tokenizer)?;
    println!(
        "tokenizer     {} {} bytes sha256 {} ok",
        manifest.tokenizer.file, manifest.tokenizer.size, manifest.tokenizer.sha256
    );
    println!(
        "stages        {} (chunks of at most {} bytes)",
        manifest.stages.len(),
        manifest.chunk_size
    );
    let mut verified_chunks = 0;
    for stage in &manifest.stages {
        let path = dir.join(&stage.file);
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        for (i, chunk) in stage.chunks.iter().enumerate() {
            let start = usize::try_from(chunk.offset)?;
            let end = start + usize::try_from(chunk.size)?;
            let piece = bytes.get(start..end).with_context(|| {
                format!(
                    "{} is {} bytes, chunk {i} ends at {end}",
                    stage.file,
                    bytes.len()
                )
            })?;
            manifest.verify_chunk(stage.index, i, piece)?;
            verified_chunks += 1;
        }
        manifest.verify_stage(stage.index, &bytes)?;
        println!(
            "  stage {}     {} layers {}..{} {} bytes, {} chunks, sha256 {} ok",
            stage.index,
            stage.file,
            stage.layer_start,
            stage.layer_end,
            stage.size,
            stage.chunks.len(),
            stage.sha256
        );
        println!("              inputs  {}", summarize(&stage.inputs));
        println!("              outputs {}", summarize(&stage.outputs));
    }
    println!(
        "verified      tokenizer, {} stage(s), {verified_chunks} chunks",
        manifest.stages.len()
    );
    Ok(())
}

/// Lists names, folding the per-layer KV names into a count.
fn summarize(names: &[String]) -> String {
    let kv = names
        .iter()
        .filter(|n| n.starts_with("past_key_values.") || n.starts_with("present."))
        .count();
    let mut out: Vec<String> = names
        .iter()
        .filter(|n| !(n.starts_with("past_key_values.") || n.starts_with("present.")))
        .cloned()
        .collect();
    if kv > 0 {
        out.push(format!("{kv} KV tensors"));
    }
    out.join(", ")
}
