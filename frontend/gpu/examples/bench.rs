//! Decode and prefill tokens/s of the WGSL forward pass on this machine's
//! adapter (lavapipe where there is no GPU), one run per model.
//!
//! ```text
//! cargo run -p gpu --example bench [MODEL_DIR ...]
//! ```
//!
//! (The dev profile already optimises dependencies, and the work runs in
//! the Vulkan driver.)
//!
//! Without arguments: the committed tiny-llama and, when it has been
//! prepared, SmolLM2-135M (`models/smollm2-135m-instruct/stages-1`).

use std::path::{Path, PathBuf};
use std::time::Instant;

use engine::sampling::argmax;
use engine::{ChatMessage, ModelDir};
use gpu::{block_on, Gpu, GpuModel, ModelOptions, ModelWeights};

const DECODE_TOKENS: usize = 32;
const PROMPT: &str =
    "Write a short story about a lighthouse keeper who finds a message in a bottle, \
    and tell it in the voice of an old sailor who has seen every sea.";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut dirs: Vec<PathBuf> = std::env::args().skip(1).map(PathBuf::from).collect();
    if dirs.is_empty() {
        let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models");
        dirs.push(models.join("tiny-llama/stages-1"));
        let smol = models.join("smollm2-135m-instruct/stages-1");
        if smol.join("manifest.json").exists() {
            dirs.push(smol);
        } else {
            eprintln!(
                "notice: {} is missing (scripts/prepare_smollm2.sh)",
                smol.display()
            );
        }
    }
    let gpu = Gpu::new_blocking()?;
    println!("adapter: {}", gpu.describe());
    println!(
        "| model | prompt tokens | prefill tokens/s | decode tokens/s ({DECODE_TOKENS} tokens) |"
    );
    println!("|---|---|---|---|");
    for dir in dirs {
        let dir = ModelDir::read(&dir)?;
        let tokenizer = dir.tokenizer()?;
        let weights = ModelWeights::from_model_dir(&dir)?;
        let options = ModelOptions {
            context: 512.min(weights.config.max_position_embeddings),
            batch: 64,
        };
        let mut model = GpuModel::new(&gpu, &weights, options)?;
        let text = tokenizer.apply_chat_template(&[ChatMessage::user(PROMPT)], true)?;
        let prompt = tokenizer.encode(&text)?;

        // Warm-up: the first submission pays for lazy driver work.
        block_on(model.prefill(&prompt[..1]))?;
        model.reset();

        let t = Instant::now();
        let mut logits = block_on(model.prefill(&prompt))?;
        let prefill = t.elapsed().as_secs_f64();

        let t = Instant::now();
        for _ in 0..DECODE_TOKENS {
            logits = block_on(model.decode(argmax(&logits)))?;
        }
        let decode = t.elapsed().as_secs_f64();
        println!(
            "| {} | {} | {:.1} | {:.2} |",
            dir.manifest.name,
            prompt.len(),
            prompt.len() as f64 / prefill,
            DECODE_TOKENS as f64 / decode
        );
    }
    Ok(())
}
