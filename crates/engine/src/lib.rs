//! The inference engine: decoder stages on tract or on the engine's own
//! llama forward pass, tokenizer, KV cache, sampling and step-wise
//! generation.
//!
//! It is the one place that knows ONNX and tract; the worker canister, the
//! command line, benchmarks and tests all use it. It builds natively and for
//! `wasm32-unknown-unknown`, where `src/wasm_entropy.rs` serves `getrandom`
//! (a canister has no OS entropy; see [`seed_entropy`]).
//!
//! * [`manifest`] — `manifest.json` of a model directory, integrity checks,
//!   [`ModelDir`] (native) to read a whole directory.
//! * [`stage`] — one stage and its KV cache: ONNX `f32` on tract or on
//!   [`llama`] (the caller picks the [`Runtime`]), q8 on [`llama`].
//! * [`pipeline`] — all stages of a model in one process.
//! * [`tokenizer`] — encoding, chat template, streaming decode.
//! * [`sampling`] — greedy / temperature / top-k / top-p / repetition
//!   penalty, deterministic on every target.
//! * [`llama`] — the project's own llama forward pass: typed weights, 8-bit
//!   kernels (wasm SIMD128, AVX2), the q8 stage file and its converter.
//! * [`mod@generate`] — one token per call, or a whole generation.
//!
//! ```no_run
//! # #[cfg(not(target_arch = "wasm32"))]
//! # fn main() -> engine::Result<()> {
//! use std::sync::Arc;
//! use engine::{generate, ChatMessage, ModelDir, SamplingParams};
//!
//! let dir = ModelDir::read("models/tiny-llama/stages-1")?;
//! let pipeline = Arc::new(dir.pipeline()?);
//! let tokenizer = Arc::new(dir.tokenizer()?);
//! let prompt = tokenizer.apply_chat_template(&[ChatMessage::user("Hello!")], true)?;
//! let ids = tokenizer.encode(&prompt)?;
//! let output = generate(pipeline, tokenizer, ids, SamplingParams::greedy(32))?;
//! println!("{} ({:?})", output.text, output.finish_reason);
//! # Ok(()) }
//! # #[cfg(target_arch = "wasm32")]
//! # fn main() {}
//! ```

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod assembly;
pub mod error;
pub mod generate;
pub mod llama;
pub mod manifest;
pub mod pipeline;
pub mod sampling;
pub mod stage;
pub mod tokenizer;
#[cfg(target_arch = "wasm32")]
mod wasm_entropy;

pub use assembly::{AssembledModel, ModelAssembly};
pub use error::{Error, Result};
pub use generate::{generate, FinishReason, Generation, Output, Step, TokenLoop};
#[cfg(not(target_arch = "wasm32"))]
pub use manifest::ModelDir;
pub use manifest::{
    ChunkMeta, FileMeta, Manifest, ModelConfig, SpecialToken, SpecialTokens, StageFormat, StageMeta,
};
pub use pipeline::{Pipeline, Sequence};
pub use sampling::{Sampler, SamplingParams, MIN_TEMPERATURE};
pub use stage::{
    HiddenStates, LoadPhase, Logits, Runtime, Stage, StageData, StageInput, StageKv, StageLoader,
    StageOutput,
};
pub use tokenizer::{ChatMessage, Detokenizer, Tokenizer};
#[cfg(target_arch = "wasm32")]
pub use wasm_entropy::seed_entropy;

/// Reseeds the bytes `getrandom` serves on wasm32 (see `src/wasm_entropy.rs`);
/// natively `getrandom` uses the OS and this does nothing.
#[cfg(not(target_arch = "wasm32"))]
pub fn seed_entropy(_seed: &[u8; 32]) {}
