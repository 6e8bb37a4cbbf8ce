//! What the unit tests share: the bundled tiny model's stages loaded as
//! the workers of a pipeline would hold them.

use std::path::{Path, PathBuf};

use candid::Principal;
use serde_bytes::ByteBuf;
use worker_api::load_stages::LoadStagesArgs;

use super::assignment::Assignment;
use super::runtime::Runtime;

/// A file of `models/tiny-llama/<cut>`.
pub fn dir(cut: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../models/tiny-llama")
        .join(cut)
}

/// The workers of the pipeline [`runtimes`] loads, one per stage.
pub fn worker(stage: usize) -> Principal {
    Principal::from_slice(&[stage as u8, 9])
}

/// The runtimes of a pipeline of one worker per stage of `cut`
/// (`stages-1`, `stages-2`).
pub fn runtimes(cut: &str) -> Vec<Runtime> {
    let manifest_json = std::fs::read(dir(cut).join("manifest.json")).unwrap();
    let manifest = model_format::Manifest::from_json(&manifest_json).unwrap();
    let n = manifest.stages.len();
    let workers: Vec<Principal> = (0..n).map(worker).collect();
    (0..n)
        .map(|s| {
            let args = LoadStagesArgs {
                model: manifest.name.clone(),
                manifest_json: ByteBuf::from(manifest_json.clone()),
                stages: vec![s as u32],
                pipeline: workers.clone(),
            };
            let (assignment, manifest) = Assignment::check(args, workers[s]).unwrap();
            let bytes = std::fs::read(dir(cut).join(&manifest.stages[s].file)).unwrap();
            // As the worker loads them: on the engine's own pass.
            let mut loader =
                engine::llama::LlamaLoader::new(&manifest.stages[s], &manifest.config, bytes)
                    .unwrap();
            while !loader.advance().unwrap() {}
            let stage = loader.into_stage().unwrap();
            let tokenizer = std::fs::read(dir(cut).join(&manifest.tokenizer.file)).unwrap();
            let tokenizer =
                (s == 0).then(|| engine::Tokenizer::new(&manifest, &tokenizer).unwrap());
            Runtime::new(assignment, manifest, vec![stage], tokenizer)
        })
        .collect()
}
