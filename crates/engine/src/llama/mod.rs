//! The project's own llama forward pass, without tract.
//!
//! * [`weights`] — the typed weights of one stage, read from its ONNX
//!   initializers ([`StageWeights::from_onnx`]).
//! * `onnx_proto` — the few protobuf fields that listing initializers needs.

mod onnx_proto;
pub mod weights;

pub use weights::{F32Tensor, LayerWeights, LmHead, StageWeights, WeightsError};
