//! Native prefill and decode tokens/s of one model directory on tract
//! (its ONNX `f32` stages) against the engine's own forward pass with 8-bit
//! weights (quantised in memory), on one prompt.
//!
//! ```sh
//! cargo run --release -p engine --example q8_bench -- models/smollm2-135m-instruct/stages-1 [prompt tokens] [decode tokens]
//! ```

use std::time::Instant;

use engine::llama::{LlamaStage, StageWeights, WeightFormat};
use engine::{ModelDir, Pipeline, Stage};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .ok_or("usage: q8_bench <model dir> [prompt] [decode]")?;
    let prompt_len: usize = args.next().map_or(Ok(128), |a| a.parse())?;
    let decode_len: usize = args.next().map_or(Ok(64), |a| a.parse())?;
    let dir = ModelDir::read(&path)?;
    let config = &dir.manifest.config;
    let prompt: Vec<u32> = (0..prompt_len as u32)
        .map(|i| (i * 7919 + 13) % config.vocab_size as u32)
        .collect();

    let tract = dir.pipeline()?;
    let stages = dir
        .manifest
        .stages
        .iter()
        .zip(&dir.stage_files)
        .map(|(meta, bytes)| {
            let weights = StageWeights::from_onnx(bytes, config, meta)?;
            let stage = LlamaStage::from_weights(weights, config, meta, WeightFormat::Q8)?;
            Ok(Stage::from_llama(stage))
        })
        .collect::<engine::Result<Vec<_>>>()?;
    let q8 = Pipeline::from_stages(config.clone(), stages)?;

    for (name, pipeline) in [("tract f32", &tract), ("own q8", &q8)] {
        let mut seq = pipeline.new_sequence();
        let t = Instant::now();
        let mut logits = pipeline.prefill(&mut seq, &prompt)?;
        let prefill = t.elapsed().as_secs_f64();
        let t = Instant::now();
        for _ in 0..decode_len {
            let next = engine::sampling::argmax(&logits);
            logits = pipeline.decode(&mut seq, next)?;
        }
        let decode = t.elapsed().as_secs_f64();
        println!(
            "{name:>9}: prefill {prompt_len} tokens {:.1} tokens/s, decode {decode_len} tokens {:.1} tokens/s",
            prompt_len as f64 / prefill,
            decode_len as f64 / decode
        );
    }
    Ok(())
}
