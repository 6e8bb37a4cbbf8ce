//! A model arriving chunk by chunk, as the task manager serves it, turned
//! into a [`ChatModel`] on the GPU: the browser's load path (plain Rust,
//! tested natively; `web` adapts it to JavaScript).
//!
//! [`ModelLoader`] assembles the files with the engine's [`ModelAssembly`]
//! (each stage chunk checked against the manifest's size and SHA-256 on
//! arrival, every whole file at the end, as the CPU backend does), then
//! reads the weights from the stage files.
//! [`ChatModel`] encodes a chat as the worker canister does
//! (`Tokenizer::encode_chat`, generation prompt added) and generates with
//! [`generate`](crate::generate()), so its greedy answer is the canisters'.

use engine::{
    AssembledModel, ChatMessage, Manifest, ModelAssembly, SamplingParams, Step, Tokenizer,
};

use crate::context::Gpu;
use crate::error::Result;
use crate::generate::{generate, Flow, GpuOutput};
use crate::model::{GpuModel, ModelOptions};
use crate::weights::ModelWeights;

/// A model's files arriving chunk by chunk (the engine's
/// [`ModelAssembly`], which checks them), then read as GPU weights.
#[derive(Debug)]
pub struct ModelLoader {
    files: ModelAssembly,
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
        Ok(ModelLoader {
            files: ModelAssembly::new(manifest_json)?,
        })
    }

    pub fn manifest(&self) -> &Manifest {
        self.files.manifest()
    }

    /// Pieces of `tokenizer.json`: its size cut into `chunk_size` pieces.
    pub fn tokenizer_chunks(&self) -> usize {
        self.files.tokenizer_chunks()
    }

    /// Adds piece `index` of `tokenizer.json` (pieces come in order).
    pub fn add_tokenizer_chunk(&mut self, index: usize, bytes: &[u8]) -> Result<()> {
        Ok(self.files.add_tokenizer_chunk(index, bytes)?)
    }

    /// Adds chunk `index` of stage `stage` (chunks come in order), checked
    /// against the manifest's size and SHA-256 for it.
    pub fn add_stage_chunk(&mut self, stage: usize, index: usize, bytes: &[u8]) -> Result<()> {
        Ok(self.files.add_stage_chunk(stage, index, bytes)?)
    }

    /// Checks every file whole (size and SHA-256), builds the tokenizer and
    /// reads the weights from the stage files.
    pub fn finish(self) -> Result<CheckedModel> {
        let AssembledModel {
            manifest,
            tokenizer,
            stages,
        } = self.files.finish()?;
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
