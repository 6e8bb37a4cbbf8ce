//! The engine side of the browser API, in plain Rust (tested natively).
//!
//! [`ModelLoader`] takes a model's manifest, then its files chunk by chunk
//! as the task manager serves them (each stage chunk checked against the
//! manifest's size and SHA-256 on arrival), and [`ModelLoader::finish`]
//! checks every whole file against the manifest before tract loads the
//! stages. [`LoadedModel::start`] encodes a chat the way the worker
//! canister does (`Tokenizer::encode_chat`, generation prompt added) and
//! returns a [`Run`], stepped one token at a time so that its caller can
//! look for a cancel between tokens.

use std::sync::Arc;

use engine::{
    ChatMessage, FinishReason, Generation, Manifest, Pipeline, SamplingParams, Tokenizer,
};

use crate::error::{Result, WebError};

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

/// A file being assembled from its chunks, in order.
#[derive(Debug, Default)]
struct Assembly {
    bytes: Vec<u8>,
    chunks: usize,
}

/// A model arriving chunk by chunk.
#[derive(Debug)]
pub struct ModelLoader {
    manifest: Manifest,
    tokenizer: Assembly,
    stages: Vec<Assembly>,
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

    /// Chunks of `tokenizer.json`: its size cut into `chunk_size` pieces.
    pub fn tokenizer_chunks(&self) -> usize {
        self.manifest
            .tokenizer
            .size
            .div_ceil(self.manifest.chunk_size)
            .try_into()
            .unwrap_or(usize::MAX)
    }

    /// Bytes of every file (stages and tokenizer).
    pub fn total_bytes(&self) -> u64 {
        self.manifest.tokenizer.size + self.manifest.stages.iter().map(|s| s.size).sum::<u64>()
    }

    /// Adds chunk `index` of `tokenizer.json` (chunks come in order). The
    /// manifest has no hash per tokenizer chunk: the whole file is checked
    /// by [`ModelLoader::finish`].
    pub fn add_tokenizer_chunk(&mut self, index: usize, bytes: &[u8]) -> Result<()> {
        let expected_chunks = self.tokenizer_chunks();
        let size = self.manifest.tokenizer.size;
        let chunk_size = self.manifest.chunk_size;
        let file = &mut self.tokenizer;
        if index != file.chunks {
            return Err(WebError::ChunkOrder {
                file: "tokenizer".into(),
                expected: file.chunks,
                found: index,
            });
        }
        if index >= expected_chunks {
            return Err(WebError::TokenizerChunkOutOfRange {
                chunk: index,
                chunks: expected_chunks,
            });
        }
        let offset = index as u64 * chunk_size;
        let expected = (size - offset).min(chunk_size);
        if bytes.len() as u64 != expected {
            return Err(engine::Error::SizeMismatch {
                what: format!("tokenizer chunk {index}"),
                expected,
                found: bytes.len() as u64,
            }
            .into());
        }
        file.bytes.extend_from_slice(bytes);
        file.chunks += 1;
        Ok(())
    }

    /// Adds chunk `index` of stage `stage` (chunks come in order), checked
    /// against the manifest's size and SHA-256 for it.
    pub fn add_stage_chunk(&mut self, stage: usize, index: usize, bytes: &[u8]) -> Result<()> {
        self.manifest
            .verify_chunk(stage, index, bytes)
            .map_err(engine::Error::from)?;
        let file = self
            .stages
            .get_mut(stage)
            .ok_or(engine::Error::StageOutOfRange {
                stage,
                stages: self.manifest.stages.len(),
            })?;
        if index != file.chunks {
            return Err(WebError::ChunkOrder {
                file: format!("stage {stage}"),
                expected: file.chunks,
                found: index,
            });
        }
        if file.bytes.is_empty() {
            file.bytes
                .reserve_exact(self.manifest.stages[stage].size as usize);
        }
        file.bytes.extend_from_slice(bytes);
        file.chunks += 1;
        Ok(())
    }

    /// Checks every file against the manifest (size and SHA-256), then
    /// builds the tokenizer and loads the stages into tract.
    pub fn finish(self) -> Result<LoadedModel> {
        let tokenizer_chunks = self.tokenizer_chunks();
        let manifest = self.manifest;
        for (meta, file) in manifest.stages.iter().zip(&self.stages) {
            if file.chunks != meta.chunks.len() {
                return Err(WebError::Incomplete {
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
            return Err(WebError::Incomplete {
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
