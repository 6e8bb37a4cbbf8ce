//! All stages of a model in one process, run in order.
//!
//! A [`Pipeline`] holds every [`Stage`] of a model; a [`Sequence`] holds the
//! KV caches of one conversation in every stage and its current position.
//! [`Pipeline::prefill`] runs a prompt, [`Pipeline::decode`] one more token;
//! both return the logits of the last position. When stages live in
//! different canisters, each canister runs its [`Stage`] directly instead.
//!
//! ```no_run
//! # fn demo(pipeline: &engine::Pipeline) -> engine::Result<()> {
//! let mut seq = pipeline.new_sequence();
//! let logits = pipeline.prefill(&mut seq, &[1, 2, 3])?;
//! let next = engine::sampling::argmax(&logits);
//! let logits = pipeline.decode(&mut seq, next)?;
//! # Ok(()) }
//! ```

use crate::error::{Error, Result};
use crate::manifest::{Manifest, ModelConfig};
use crate::stage::{Logits, Runtime, Stage, StageData, StageInput, StageKv, StageOutput};

/// Every stage of a model, in order.
#[derive(Debug, Clone)]
pub struct Pipeline {
    config: ModelConfig,
    stages: Vec<Stage>,
}

/// One sequence's state in a [`Pipeline`]: KV caches and position.
#[derive(Debug, Clone)]
pub struct Sequence {
    kv: Vec<StageKv>,
    position: usize,
}

impl Sequence {
    /// Number of positions processed so far.
    pub fn position(&self) -> usize {
        self.position
    }

    /// Bytes held by the KV caches of all stages.
    pub fn kv_size_bytes(&self) -> usize {
        self.kv.iter().map(StageKv::size_bytes).sum()
    }
}

impl Pipeline {
    /// Loads every stage of `manifest` from its file bytes (in stage order),
    /// ONNX `f32` stages on tract: [`Pipeline::load_with`] and
    /// [`Runtime::Tract`].
    pub fn load<B: AsRef<[u8]>>(manifest: &Manifest, stage_files: &[B]) -> Result<Self> {
        Self::load_with(manifest, stage_files, Runtime::Tract)
    }

    /// Loads every stage of `manifest` from its file bytes (in stage order),
    /// ONNX `f32` stages on `runtime` (q8 stages always run on the engine's
    /// pass). Hashes are not checked here: see [`Manifest::verify_stage`].
    pub fn load_with<B: AsRef<[u8]>>(
        manifest: &Manifest,
        stage_files: &[B],
        runtime: Runtime,
    ) -> Result<Self> {
        if stage_files.len() != manifest.stages.len() {
            return Err(Error::ShapeMismatch {
                what: "stage files".into(),
                expected: format!("{} files", manifest.stages.len()),
                found: format!("{} files", stage_files.len()),
            });
        }
        let stages = manifest
            .stages
            .iter()
            .zip(stage_files)
            .map(|(meta, bytes)| Stage::load_with(meta, &manifest.config, bytes.as_ref(), runtime))
            .collect::<Result<Vec<_>>>()?;
        Self::from_stages(manifest.config.clone(), stages)
    }

    /// Assembles loaded stages; they must cover the layers in order.
    pub fn from_stages(config: ModelConfig, stages: Vec<Stage>) -> Result<Self> {
        let mut next_layer = 0;
        for (i, stage) in stages.iter().enumerate() {
            let meta = stage.meta();
            let last = i + 1 == stages.len();
            if meta.index != i || meta.layer_start != next_layer || meta.is_last() != last {
                return Err(Error::StageMismatch {
                    stage: i,
                    message: format!(
                        "found stage {} (layers {}..{}) at position {i}, expected the stage starting at layer {next_layer}",
                        meta.index, meta.layer_start, meta.layer_end
                    ),
                });
            }
            next_layer = meta.layer_end;
        }
        if next_layer != config.num_layers || stages.is_empty() {
            return Err(Error::ShapeMismatch {
                what: "pipeline layers".into(),
                expected: format!("stages covering {} layers", config.num_layers),
                found: format!("{} stages covering {next_layer} layers", stages.len()),
            });
        }
        Ok(Pipeline { config, stages })
    }

    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    pub fn stages(&self) -> &[Stage] {
        &self.stages
    }

    /// The most positions a sequence can hold.
    pub fn max_positions(&self) -> usize {
        self.config.max_position_embeddings
    }

    /// A fresh sequence with empty KV caches.
    pub fn new_sequence(&self) -> Sequence {
        Sequence {
            kv: self.stages.iter().map(Stage::new_kv).collect(),
            position: 0,
        }
    }

    /// Runs `tokens` (the prompt, or more of it) and returns the logits of
    /// the last one.
    pub fn prefill(&self, seq: &mut Sequence, tokens: &[u32]) -> Result<Vec<f32>> {
        Ok(self.forward(seq, tokens, false)?.last)
    }

    /// Runs one token and returns its logits.
    pub fn decode(&self, seq: &mut Sequence, token: u32) -> Result<Vec<f32>> {
        Ok(self.forward(seq, &[token], false)?.last)
    }

    /// Runs `tokens` through every stage. On error `seq` is left as it was.
    pub fn forward(&self, seq: &mut Sequence, tokens: &[u32], all_logits: bool) -> Result<Logits> {
        if tokens.is_empty() {
            return Err(Error::EmptyPrompt);
        }
        let needed = seq.position.saturating_add(tokens.len());
        if needed > self.max_positions() {
            return Err(Error::PromptTooLong {
                tokens: needed,
                max: self.max_positions(),
            });
        }
        if seq.kv.len() != self.stages.len() {
            return Err(Error::ShapeMismatch {
                what: "sequence".into(),
                expected: format!("KV caches for {} stages", self.stages.len()),
                found: format!("{} stages", seq.kv.len()),
            });
        }
        // Each stage appends to its cache in place; if a stage fails, the
        // caches of the stages before it are cut back to where they were.
        let mut data = StageData::Tokens(tokens.to_vec());
        let mut logits = None;
        let mut failure = None;
        for (stage, kv) in self.stages.iter().zip(seq.kv.iter_mut()) {
            let input = StageInput {
                data,
                start_position: seq.position,
                all_logits,
            };
            match stage.run(kv, input) {
                Ok(StageOutput::Hidden(hidden)) => data = StageData::Hidden(hidden),
                Ok(StageOutput::Logits(l)) => {
                    logits = Some(l);
                    break;
                }
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        let logits = match (failure, logits) {
            (None, Some(logits)) => logits,
            (failure, _) => {
                for kv in &mut seq.kv {
                    kv.truncate(seq.position)?;
                }
                return Err(failure.unwrap_or_else(|| Error::StageMismatch {
                    stage: self.stages.len().saturating_sub(1),
                    message: "the last stage did not produce logits".into(),
                }));
            }
        };
        seq.position = needed;
        Ok(logits)
    }
}
