//! Converts a model directory of ONNX `f32` stages into one of q8 stages
//! (what `icllm quantize` runs).
//!
//! Each stage's weights are read from its ONNX initializers, quantised per
//! block of 32 and written as `stage-<i>.q8` (see [`super::q8file`]); the
//! manifest keeps the stage's layers, inputs and outputs, and records the
//! new file, `"format": "q8"`, size, hash and chunks. The tokenizer is
//! copied. The result is a model directory like any other: `ModelDir::read`
//! verifies it, `icllm upload` uploads it.

use std::path::Path;

use super::forward::{LlamaStage, WeightFormat};
use super::weights::StageWeights;
use crate::error::{Error, Result};
use crate::manifest::{chunk_file, sha256_hex, Manifest, ModelDir, StageFormat};

/// What [`quantize_model_dir`] wrote.
#[derive(Debug, Clone)]
pub struct Quantized {
    pub manifest: Manifest,
    /// Bytes of the source stage files, and of the q8 ones.
    pub source_bytes: u64,
    pub q8_bytes: u64,
}

/// Reads (and verifies) the model directory `src` and writes its q8
/// version to `dst` (created if needed). Stages already in q8 are copied.
pub fn quantize_model_dir(src: &Path, dst: &Path) -> Result<Quantized> {
    let dir = ModelDir::read(src)?;
    std::fs::create_dir_all(dst).map_err(|e| io(dst, &e))?;
    let mut manifest = dir.manifest.clone();
    let (mut source_bytes, mut q8_bytes) = (0, 0);
    for (meta, bytes) in manifest.stages.iter_mut().zip(&dir.stage_files) {
        source_bytes += bytes.len() as u64;
        let q8 = match meta.format {
            StageFormat::Q8 => bytes.clone(),
            StageFormat::OnnxF32 => {
                let weights = StageWeights::from_onnx(bytes, &dir.manifest.config, meta)?;
                LlamaStage::from_weights(weights, &dir.manifest.config, meta, WeightFormat::Q8)?
                    .to_q8_file()
            }
        };
        meta.file = format!("stage-{}.q8", meta.index);
        meta.format = StageFormat::Q8;
        meta.size = q8.len() as u64;
        meta.sha256 = sha256_hex(&q8);
        meta.chunks = chunk_file(&q8, manifest.chunk_size);
        q8_bytes += meta.size;
        let path = dst.join(&meta.file);
        std::fs::write(&path, &q8).map_err(|e| io(&path, &e))?;
    }
    let tokenizer = dst.join(&manifest.tokenizer.file);
    std::fs::write(&tokenizer, &dir.tokenizer_json).map_err(|e| io(&tokenizer, &e))?;
    // Round-trip through the validating parser before writing.
    let json = manifest.to_json()?;
    let manifest = Manifest::from_json(&json)?;
    let path = dst.join("manifest.json");
    std::fs::write(&path, &json).map_err(|e| io(&path, &e))?;
    Ok(Quantized {
        manifest,
        source_bytes,
        q8_bytes,
    })
}

fn io(path: &Path, e: &std::io::Error) -> Error {
    Error::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}
