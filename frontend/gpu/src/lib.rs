//! The llama decoder forward pass in WGSL compute shaders on wgpu: Vulkan
//! natively (Mesa's lavapipe in CI), WebGPU in the browser.
//!
//! * [`context`] — the device and queue ([`Gpu`]), buffers, read-backs and
//!   the compiled-kernel helper every op uses.
//! * [`ops`] — one struct per op, each with its shader under `shaders/`:
//!   embedding gather, RMSNorm, linear, RoPE, KV-cache append, grouped-query
//!   attention, SwiGLU, residual add, tied LM head.
//! * [`weights`] — the f32 tensors the model uploads, gathered from a
//!   model's ONNX stage files with `engine::llama::StageWeights`.
//! * [`model`] — [`GpuModel`]: prefill and decode steps over a KV cache
//!   kept on the GPU.
//! * [`mod@generate`] — text generation with the engine's token loop and
//!   tokenizer, streaming each step to a callback that may cancel.
//! * [`loader`] — a model from its chunks as the task manager serves them
//!   (each checked against the manifest's SHA-256), and [`ChatModel`]: the
//!   model on the GPU with its tokenizer and chat template.
//! * `web` (wasm32 only) — the JavaScript API (`wasm-bindgen --target web`,
//!   `build.sh` builds `pkg/`) the chat UI's WebGPU worker calls.
//!
//! Numbers follow the ONNX stages the canisters run (same weights, same
//! RoPE convention, f32 throughout), so greedy tokens match the tract
//! engine's.

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod context;
pub mod error;
pub mod generate;
pub mod loader;
pub mod model;
pub mod ops;
#[cfg(target_arch = "wasm32")]
pub mod web;
pub mod weights;

pub use context::Gpu;
pub use error::{GpuError, Result};
pub use generate::{generate, Flow, GpuOutput};
pub use loader::{ChatModel, CheckedModel, ModelLoader};
pub use model::{GpuModel, Logits, ModelOptions};
pub use weights::{LayerWeights, ModelWeights};

/// Runs a future to completion on this thread (native only).
#[cfg(not(target_arch = "wasm32"))]
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    pollster::block_on(future)
}
