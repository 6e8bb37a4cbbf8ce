//! Loading a stage onto the engine's own forward pass, in phases that a
//! canister spreads over messages (the stage stays in heap between them):
//!
//! * a q8 stage file ([`super::q8file`]) is ready at once: its bytes become
//!   the weights, nothing is copied;
//! * an ONNX `f32` stage has its weights read from its initializers
//!   ([`StageWeights::from_onnx`]) when the loader is made, and the file's
//!   bytes freed then; [`LlamaLoader::advance`] converts them into the
//!   kernels' layout ([`LlamaStage::from_weights`], each matrix freed from
//!   its ONNX layout as it is transposed). The heap peaks at the file and
//!   its weights, once each.
//!
//! [`crate::StageLoader`] uses it for every stage that runs on the engine's
//! pass; a caller that never runs tract (the worker canister) can use it
//! alone, and then links no part of tract.
//!
//! ```no_run
//! # fn demo(meta: &engine::StageMeta, config: &engine::ModelConfig, bytes: Vec<u8>) -> engine::Result<()> {
//! use engine::llama::LlamaLoader;
//! let mut loader = LlamaLoader::new(meta, config, bytes)?; // read
//! while !loader.advance()? {} // convert
//! let stage = loader.into_stage()?;
//! let mut kv = stage.new_kv();
//! kv.reserve(64)?;
//! # Ok(()) }
//! ```

use std::sync::Arc;

use super::forward::{LlamaStage, WeightFormat};
use super::weights::StageWeights;
use crate::error::{Error, Result};
use crate::manifest::{ModelConfig, StageFormat, StageMeta};

/// A stage being loaded onto the engine's pass (see the module docs).
#[derive(Debug)]
pub struct LlamaLoader {
    meta: StageMeta,
    config: ModelConfig,
    state: State,
}

#[derive(Debug)]
enum State {
    /// An ONNX stage's `f32` weights, read.
    Weights(Box<StageWeights>),
    Ready(Box<LlamaStage>),
    /// A phase failed.
    Spent,
}

impl LlamaLoader {
    /// The first phase, for the stage's format in `meta`: a q8 file keeps
    /// `bytes` as its weights; an ONNX `f32` stage reads its weights and
    /// frees `bytes`.
    pub fn new(meta: &StageMeta, config: &ModelConfig, bytes: Vec<u8>) -> Result<Self> {
        match meta.format {
            StageFormat::Q8 => {
                let stage = LlamaStage::from_q8_file(Arc::new(bytes), config, meta)?;
                Ok(Self::with(meta, config, State::Ready(Box::new(stage))))
            }
            StageFormat::OnnxF32 => Self::from_onnx(meta, config, &bytes),
        }
    }

    /// The first phase for an ONNX `f32` stage: its weights, read from the
    /// initializers of `onnx_bytes` (the graph itself is not used).
    pub fn from_onnx(meta: &StageMeta, config: &ModelConfig, onnx_bytes: &[u8]) -> Result<Self> {
        if meta.format != StageFormat::OnnxF32 {
            return Err(Error::StageMismatch {
                stage: meta.index,
                message: format!(
                    "expected an ONNX f32 stage, the manifest says {:?}",
                    meta.format
                ),
            });
        }
        let weights = StageWeights::from_onnx(onnx_bytes, config, meta)?;
        Ok(Self::with(meta, config, State::Weights(Box::new(weights))))
    }

    fn with(meta: &StageMeta, config: &ModelConfig, state: State) -> Self {
        LlamaLoader {
            meta: meta.clone(),
            config: config.clone(),
            state,
        }
    }

    /// Whether the stage is ready ([`LlamaLoader::into_stage`]).
    pub fn is_ready(&self) -> bool {
        matches!(self.state, State::Ready(_))
    }

    /// Runs the next phase (converting the weights read); `true` once the
    /// stage is ready. After an error the loader is spent.
    pub fn advance(&mut self) -> Result<bool> {
        self.state = match std::mem::replace(&mut self.state, State::Spent) {
            State::Weights(weights) => State::Ready(Box::new(LlamaStage::from_weights(
                *weights,
                &self.config,
                &self.meta,
                WeightFormat::F32,
            )?)),
            ready @ State::Ready(_) => ready,
            State::Spent => return Err(spent()),
        };
        Ok(true)
    }

    /// The loaded stage, once ready.
    pub fn into_stage(self) -> Result<LlamaStage> {
        match self.state {
            State::Ready(stage) => Ok(*stage),
            State::Weights(_) => Err(Error::Inference(format!(
                "stage {} is not loaded yet: its weights are still to be converted",
                self.meta.index
            ))),
            State::Spent => Err(spent()),
        }
    }
}

fn spent() -> Error {
    Error::Inference("the stage loader was used after an error".into())
}
