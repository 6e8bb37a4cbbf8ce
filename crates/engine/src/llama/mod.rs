//! The project's own llama forward pass, without tract: `f32` weights as a
//! reference, 8-bit weights (per block of 32, one scale each) to make tokens
//! cheap on the IC.
//!
//! * [`weights`] — the typed weights of one stage, read from its ONNX
//!   initializers ([`StageWeights::from_onnx`]).
//! * [`forward`] — [`LlamaStage`]: one stage's forward pass over its
//!   [`LlamaKv`] cache, appended in place.
//! * [`loader`] — [`LlamaLoader`]: a q8 stage file, or an ONNX `f32`
//!   stage's weights, loaded in phases; what the worker canister runs.
//! * [`kernels`] — quantisation, the int8 dot product (wasm SIMD128, AVX2,
//!   scalar) and the `f32` helpers.
//! * [`q8file`] — the q8 stage file: a stage's 8-bit weights as the kernels
//!   read them, loaded without a copy of the quants.
//! * `convert` (native) — a model directory of ONNX stages into q8 stages
//!   (`icllm quantize`).
//! * `onnx_proto` — the few protobuf fields that listing initializers needs.

#[cfg(not(target_arch = "wasm32"))]
pub mod convert;
pub mod forward;
pub mod kernels;
pub mod loader;
mod onnx_proto;
pub mod q8file;
pub mod weights;

#[cfg(not(target_arch = "wasm32"))]
pub use convert::{quantize_model_dir, Quantized};
pub use forward::{LlamaKv, LlamaStage, Matrix, Q8Matrix, Scales, WeightFormat, TOKEN_BLOCK};
pub use loader::LlamaLoader;
pub use weights::{F32Tensor, LayerWeights, LmHead, StageWeights, WeightsError};
