//! Text generation on the GPU with the engine's model-free token loop
//! ([`engine::TokenLoop`]: sampling, streaming detokenization, stop
//! sequences, limits), so the GPU and the canisters sample alike.

use engine::{FinishReason, SamplingParams, Step, TokenLoop, Tokenizer};

use crate::error::Result;
use crate::model::GpuModel;

/// What a generation produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GpuOutput {
    /// Generated tokens (an EOS token included).
    pub tokens: Vec<u32>,
    pub text: String,
    /// `None` when the callback stopped the generation.
    pub finish_reason: Option<FinishReason>,
}

/// Whether to go on after a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Cancel,
}

/// Generates from `prompt` (token ids) on an empty KV cache, calling
/// `on_step` after every token; returning [`Flow::Cancel`] ends the
/// generation there. The model's cache is reset first.
pub async fn generate(
    model: &mut GpuModel,
    tokenizer: &Tokenizer,
    prompt: &[u32],
    params: &SamplingParams,
    mut on_step: impl FnMut(&Step) -> Flow,
) -> Result<GpuOutput> {
    let mut tokens = TokenLoop::new(prompt, params, model.options().context)?;
    model.reset();
    let mut logits = model.prefill(prompt).await?;
    loop {
        let step = tokens.on_logits(tokenizer, &logits)?;
        let flow = on_step(&step);
        if step.finished.is_some() || flow == Flow::Cancel {
            return Ok(GpuOutput {
                tokens: tokens.generated().to_vec(),
                text: tokens.text().to_string(),
                finish_reason: step.finished,
            });
        }
        logits = model.decode(step.token).await?;
    }
}
