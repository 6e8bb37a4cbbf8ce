//! The engine side of the browser API, in plain Rust (tested natively).
//!
//! [`ModelLoader`] takes a model's manifest, then its files chunk by chunk
//! as the task manager serves them, assembled and checked by the engine's
//! [`ModelAssembly`] (each stage chunk against the manifest's size and
//! SHA-256 on arrival, every whole file at the end), before tract loads
//! the stages. [`LoadedModel::start`] encodes a chat the way the worker
//! canister does (`Tokenizer::encode_chat`, generation prompt added) and
//! returns a [`Run`], stepped one token at a time so that its caller can
//! look for a cancel between tokens.

use std::sync::Arc;

use engine::{
    AssembledModel, ChatMessage, FinishReason, Generation, Manifest, ModelAssembly, Pipeline,
    SamplingParams, Tokenizer,
};

use crate::error::Result;

/// Sampling as the app's local mode passes it (temperature 0: greedy).
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub max_new_tokens: usize,
    pub temperature: f32,
    pub top_p: f32,
    /// Seed of the sampling generator.
    pub seed: [u8; 32],
}

impl Settings {
    fn params(&self) -> SamplingParams {
        SamplingParams {
            temperature: self.temperature,
            top_p: self.top_p,
            max_new_tokens: self.max_new_tokens,
            seed: self.seed,
            ..SamplingParams::default()
        }
    }
}

/// A model's files arriving chunk by chunk (the engine's
/// [`ModelAssembly`], which checks them), then loaded into tract.
#[derive(Debug)]
pub struct ModelLoader {
    files: ModelAssembly,
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

    /// Chunks of `tokenizer.json`: its size cut into `chunk_size` pieces.
    pub fn tokenizer_chunks(&self) -> usize {
        self.files.tokenizer_chunks()
    }

    /// Bytes of every file (stages and tokenizer).
    pub fn total_bytes(&self) -> u64 {
        self.files.total_bytes()
    }

    /// Adds chunk `index` of `tokenizer.json` (chunks come in order).
    pub fn add_tokenizer_chunk(&mut self, index: usize, bytes: &[u8]) -> Result<()> {
        Ok(self.files.add_tokenizer_chunk(index, bytes)?)
    }

    /// Adds chunk `index` of stage `stage` (chunks come in order), checked
    /// against the manifest's size and SHA-256 for it.
    pub fn add_stage_chunk(&mut self, stage: usize, index: usize, bytes: &[u8]) -> Result<()> {
        Ok(self.files.add_stage_chunk(stage, index, bytes)?)
    }

    /// Checks every file against the manifest (size and SHA-256), then
    /// builds the tokenizer and loads the stages into tract.
    pub fn finish(self) -> Result<LoadedModel> {
        let AssembledModel {
            manifest,
            tokenizer,
            stages,
        } = self.files.finish()?;
        let pipeline = Pipeline::load(&manifest, &stages)?;
        Ok(LoadedModel {
            manifest,
            pipeline: Arc::new(pipeline),
            tokenizer: Arc::new(tokenizer),
        })
    }
}

/// A model loaded into tract, ready to generate.
#[derive(Debug, Clone)]
pub struct LoadedModel {
    manifest: Manifest,
    pipeline: Arc<Pipeline>,
    tokenizer: Arc<Tokenizer>,
}

impl LoadedModel {
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Encodes `messages` as the worker canister does and prepares a run
    /// (nothing runs yet).
    pub fn start(&self, messages: &[ChatMessage], settings: &Settings) -> Result<Run> {
        let prompt = self.tokenizer.encode_chat(messages, true)?;
        self.start_tokens(prompt, settings)
    }

    /// Prepares a run from prompt token ids (benchmarks, fixtures).
    pub fn start_tokens(&self, prompt: Vec<u32>, settings: &Settings) -> Result<Run> {
        let prompt_tokens = prompt.len();
        let generation = Generation::new(
            Arc::clone(&self.pipeline),
            Arc::clone(&self.tokenizer),
            prompt,
            settings.params(),
        )?;
        Ok(Run {
            generation,
            prompt_tokens,
            cancelled: false,
        })
    }
}

/// Why a run ended, as the app names it.
pub fn finish_reason_name(reason: FinishReason) -> &'static str {
    match reason {
        FinishReason::Eos => "eos",
        FinishReason::MaxNewTokens => "max-new-tokens",
        FinishReason::ContextFull => "context-full",
        FinishReason::StopSequence => "stop-sequence",
    }
}

/// One generation, a token per [`Run::step`].
#[derive(Debug)]
pub struct Run {
    generation: Generation,
    prompt_tokens: usize,
    cancelled: bool,
}

impl Run {
    /// Produces the next token's text (possibly empty); `None` once the run
    /// has ended (finished or cancelled). The first step runs the prompt.
    pub fn step(&mut self) -> Result<Option<String>> {
        if self.is_done() {
            return Ok(None);
        }
        let step = self.generation.step()?;
        Ok(Some(step.text_delta))
    }

    /// Ends the run before its next token.
    pub fn cancel(&mut self) {
        if self.generation.finished().is_none() {
            self.cancelled = true;
        }
    }

    pub fn is_done(&self) -> bool {
        self.cancelled || self.generation.finished().is_some()
    }

    /// "eos", "max-new-tokens", "context-full", "stop-sequence" or
    /// "cancelled" once done; `None` before.
    pub fn finish_reason(&self) -> Option<&'static str> {
        if self.cancelled {
            return Some("cancelled");
        }
        self.generation.finished().map(finish_reason_name)
    }

    pub fn text(&self) -> &str {
        self.generation.text()
    }

    pub fn prompt_tokens(&self) -> usize {
        self.prompt_tokens
    }

    /// Tokens generated so far (an end-of-sequence token included).
    pub fn generated_tokens(&self) -> usize {
        self.generation.tokens().len()
    }

    pub fn tokens(&self) -> &[u32] {
        self.generation.tokens()
    }
}

/// Runs `run` to its end, calling `on_token` with each token's text; a
/// `false` from it cancels the run before the next token.
pub fn run_to_end(run: &mut Run, mut on_token: impl FnMut(&str) -> bool) -> Result<()> {
    while let Some(text) = run.step()? {
        if !on_token(&text) {
            run.cancel();
        }
    }
    Ok(())
}
