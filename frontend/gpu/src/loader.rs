//! A model arriving chunk by chunk, as the task manager serves it, turned
//! into a [`ChatModel`] on the GPU: the browser's load path (plain Rust,
//! tested natively; `web` adapts it to JavaScript).
//!
//! [`ModelLoader`] checks each stage chunk against the manifest's size and
//! SHA-256 on arrival and [`ModelLoader::finish`] every whole file, before
//! the tokenizer is built and the weights are read from the stage files.
//! [`ChatModel`] encodes a chat as the worker canister does
//! (`Tokenizer::encode_chat`, generation prompt added) and generates with
//! [`generate`](crate::generate()), so its greedy answer is the canisters'.

use engine::{ChatMessage, Manifest, SamplingParams, Step, Tokenizer};

use crate::context::Gpu;
use crate::error::{GpuError, Result};
use crate::generate::{generate, Flow, GpuOutput};
use crate::model::{GpuModel, ModelOptions};
use crate::weights::ModelWeights;

/// A file assembled from its chunks, front to back.
#[derive(Debug, Default)]
struct Assembly {
    bytes: Vec<u8>,
    chunks: usize,
}

impl Assembly {
    fn expect_next(&self, file: impl FnOnce() -> String, index: usize) -> Result<()> {
        if index == self.chunks {
            Ok(())
        } else {
            Err(GpuError::ChunkOrder {
                file: file(),
                expected: self.chunks,
                found: index,
            })
        }
    }
}

/// A model's files arriving chunk by chunk.
#[derive(Debug)]
pub struct ModelLoader {
    manifest: Manifest,
    tokenizer: Assembly,
    stages: Vec<Assembly>,
}

/// Every file of a model, checked: the manifest, the tokenizer and the
/// weights (the stage files are dropped once read).
#[derive(Debug)]
pub struct CheckedModel {
    pub manifest: Manifest,
    pub tokenizer: Tokenizer,
    pub weights: ModelWeights,
}

impl ModelLoader {
    /// Parses and validates `manifest.json`.
    pub fn new(manifest_json: &[u8]) -> Result<Self> {
        let manifest = Manifest::from_json(manifest_json).map_err(engine::Error::from)?;
        let stages = manifest
            .stages
            .iter()
            .map(|_| Assembly::default())
            .collect();
        Ok(ModelLoader {
            manifest,
            tokenizer: Assembly::default(),
            stages,
        })
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Pieces of `tokenizer.json`: its size cut into `chunk_size` pieces.
    pub fn tokenizer_chunks(&self) -> usize {
        let m = &self.manifest;
        usize::try_from(m.tokenizer.size.div_ceil(m.chunk_size)).unwrap_or(usize::MAX)
    }

    /// Adds piece `index` of `tokenizer.json` (pieces come in order). The
    /// manifest has no hash per piece: [`ModelLoader::finish`] checks the
    /// whole file.
    pub fn add_tokenizer_chunk(&mut self, index: usize, bytes: &[u8]) -> Result<()> {
        let chunks = self.tokenizer_chunks();
        self.tokenizer
            .expect_next(|| "tokenizer".to_string(), index)?;
        if index >= chunks {
            return Err(GpuError::TokenizerChunkOutOfRange {
                chunk: index,
                chunks,
            });
        }
        let m = &self.manifest;
        let expected = (m.tokenizer.size - index as u64 * m.chunk_size).min(m.chunk_size);
        if bytes.len() as u64 != expected {
            return Err(engine::Error::SizeMismatch {
                what: format!("tokenizer chunk {index}"),
                expected,
                found: bytes.len() as u64,
            }
            .into());
        }
        self.tokenizer.bytes.extend_from_slice(bytes);
        self.tokenizer.chunks += 1;
        Ok(())
    }

    /// Adds chunk `index` of stage `stage` (chunks come in order), checked
    /// against the manifest's size and SHA-256 for it.
    pub fn add_stage_chunk(&mut self, stage: usize, index: usize, bytes: &[u8]) -> Result<()> {
        self.manifest
            .verify_chunk(stage, index, bytes)
            .map_err(engine::Error::from)?;
        let (Some(meta), Some(file)) =
            (self.manifest.stages.get(stage), self.stages.get_mut(stage))
        else {
            return Err(engine::Error::StageOutOfRange {
                stage,
                stages: self.manifest.stages.len(),
            }
            .into());
        };
        file.expect_next(|| format!("stage {stage}"), index)?;
        if file.bytes.is_empty() {
            file.bytes
                .reserve_exact(usize::try_from(meta.size).unwrap_or(0));
        }
        file.bytes.extend_from_slice(bytes);
        file.chunks += 1;
        Ok(())
    }

    /// Checks every file whole (size and SHA-256), builds the tokenizer and
    /// reads the weights from the stage files.
    pub fn finish(self) -> Result<CheckedModel> {
        let tokenizer_chunks = self.tokenizer_chunks();
        let manifest = self.manifest;
        for (meta, file) in manifest.stages.iter().zip(&self.stages) {
            if file.chunks != meta.chunks.len() {
                return Err(GpuError::Incomplete {
                    file: format!("stage {}", meta.index),
                    received: file.chunks,
                    expected: meta.chunks.len(),
                });
            }
            manifest
                .verify_stage(meta.index, &file.bytes)
                .map_err(engine::Error::from)?;
        }
        if self.tokenizer.chunks != tokenizer_chunks {
            return Err(GpuError::Incomplete {
                file: "tokenizer".into(),
                received: self.tokenizer.chunks,
                expected: tokenizer_chunks,
            });
        }
        manifest
            .verify_tokenizer(&self.tokenizer.bytes)
            .map_err(engine::Error::from)?;
        let tokenizer = Tokenizer::new(&manifest, &self.tokenizer.bytes)?;
        let stages: Vec<Vec<u8>> = self.stages.into_iter().map(|s| s.bytes).collect();
        let weights = ModelWeights::from_stage_files(&manifest, &stages)?;
        Ok(CheckedModel {
            manifest,
            tokenizer,
            weights,
        })
    }
}

/// A model on the GPU with its tokenizer, ready to chat.
#[derive(Debug)]
pub struct ChatModel {
    manifest: Manifest,
    tokenizer: Tokenizer,
    model: GpuModel,
}

impl ChatModel {
    /// Uploads the weights. The KV cache holds `context` positions, at
    /// most the model's `max_position_embeddings` (`None`: all of them, up
    /// to [`ModelOptions::default`]'s).
    pub fn new(gpu: &Gpu, checked: CheckedModel, context: Option<usize>) -> Result<Self> {
        let defaults = ModelOptions::default();
        let most = checked.manifest.config.max_position_embeddings;
        let options = ModelOptions {
            context: context.unwrap_or(defaults.context.min(most)),
            ..defaults
        };
        let model = GpuModel::new(gpu, &checked.weights, options)?;
        Ok(ChatModel {
            manifest: checked.manifest,
            tokenizer: checked.tokenizer,
            model,
        })
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    pub fn gpu(&self) -> &Gpu {
        self.model.gpu()
    }

    /// The chat's prompt tokens, as the worker canister encodes them.
    pub fn encode(&self, messages: &[ChatMessage]) -> Result<Vec<u32>> {
        Ok(self.tokenizer.encode_chat(messages, true)?)
    }

    /// Generates from prompt token ids; `on_step` after every token may
    /// cancel (see [`generate`](crate::generate())).
    pub async fn generate(
        &mut self,
        prompt: &[u32],
        params: &SamplingParams,
        on_step: impl FnMut(&Step) -> Flow,
    ) -> Result<GpuOutput> {
        generate(&mut self.model, &self.tokenizer, prompt, params, on_step).await
    }
}
