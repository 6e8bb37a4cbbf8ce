//! Step-wise text generation.
//!
//! A canister produces one token per update message, so generation is a
//! value that can be stored between messages: [`Generation`] owns its
//! pipeline and tokenizer through `Arc`s and its KV caches, and
//! [`Generation::step`] produces one token (the first call runs the prompt).
//! [`generate`] loops until the end for callers that do not need steps.
//!
//! The model-free half — sampling, detokenizing, stop sequences, limits — is
//! [`TokenLoop`], usable on its own by a canister whose stages live
//! elsewhere: it turns each row of logits into a [`Step`].
//!
//! A generation ends at the first of: an EOS token (returned, no text), a
//! stop sequence in the generated text (the matched text and anything after
//! it are not emitted), `max_new_tokens`, or a full context.
//!
//! ```no_run
//! # fn demo(pipeline: std::sync::Arc<engine::Pipeline>, tokenizer: std::sync::Arc<engine::Tokenizer>) -> engine::Result<()> {
//! use engine::{Generation, SamplingParams};
//! let prompt = tokenizer.encode("Once upon a time")?;
//! let mut generation = Generation::new(pipeline, tokenizer, prompt, SamplingParams::greedy(32))?;
//! loop {
//!     let step = generation.step()?;
//!     print!("{}", step.text_delta);
//!     if step.finished.is_some() {
//!         break;
//!     }
//! }
//! # Ok(()) }
//! ```

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::pipeline::{Pipeline, Sequence};
use crate::sampling::{Sampler, SamplingParams};
use crate::tokenizer::{Detokenizer, Tokenizer};

/// Why a generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FinishReason {
    /// `max_new_tokens` tokens were generated.
    MaxNewTokens,
    /// The model produced an EOS token.
    Eos,
    /// The generated text reached a stop sequence.
    StopSequence,
    /// The context (`max_position_embeddings`) is full.
    ContextFull,
}

/// One generated token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    pub token: u32,
    /// Text completed by this token (possibly empty).
    pub text_delta: String,
    /// Set on the last step.
    pub finished: Option<FinishReason>,
}

/// A whole generation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Output {
    /// Generated tokens (an EOS token included).
    pub tokens: Vec<u32>,
    pub text: String,
    pub finish_reason: FinishReason,
}

/// Turns rows of logits into steps: sampling, text, stop sequences, limits.
#[derive(Debug, Clone)]
pub struct TokenLoop {
    sampler: Sampler,
    /// Prompt followed by the generated tokens.
    context: Vec<u32>,
    prompt_len: usize,
    max_new_tokens: usize,
    max_positions: usize,
    detokenizer: Detokenizer,
    stops: StopMatcher,
    text: String,
    finished: Option<FinishReason>,
}

impl TokenLoop {
    /// Checks `params` and the prompt length against `max_positions`.
    pub fn new(prompt_ids: &[u32], params: &SamplingParams, max_positions: usize) -> Result<Self> {
        let sampler = Sampler::new(params)?;
        if prompt_ids.is_empty() {
            return Err(Error::EmptyPrompt);
        }
        if prompt_ids.len() > max_positions {
            return Err(Error::PromptTooLong {
                tokens: prompt_ids.len(),
                max: max_positions,
            });
        }
        Ok(TokenLoop {
            sampler,
            context: prompt_ids.to_vec(),
            prompt_len: prompt_ids.len(),
            max_new_tokens: params.max_new_tokens,
            max_positions,
            detokenizer: Detokenizer::new(prompt_ids),
            stops: StopMatcher::new(params.stop_sequences.clone()),
            text: String::new(),
            finished: None,
        })
    }

    /// Picks the next token from `logits` (the row of the last position).
    /// On error nothing changes.
    pub fn on_logits(&mut self, tokenizer: &Tokenizer, logits: &[f32]) -> Result<Step> {
        if self.finished.is_some() {
            return Err(Error::Finished);
        }
        // Work on a copy (the sampler, detokenizer and stop matcher all move
        // forward) so that a failure leaves the loop as it was.
        let mut next = self.clone();
        let step = next.advance(tokenizer, logits)?;
        *self = next;
        Ok(step)
    }

    fn advance(&mut self, tokenizer: &Tokenizer, logits: &[f32]) -> Result<Step> {
        let token = self.sampler.sample(logits, &self.context)?;
        let mut text_delta = String::new();
        let finished = if tokenizer.is_eos(token) {
            let tail = self.detokenizer.flush(tokenizer)?;
            self.push_text(&tail, &mut text_delta)
                .or_else(|| self.flush_text(&mut text_delta, FinishReason::Eos))
        } else {
            let delta = self.detokenizer.push(tokenizer, token)?;
            let generated = self.context.len() + 1 - self.prompt_len;
            match self.push_text(&delta, &mut text_delta) {
                Some(stop) => Some(stop),
                None if generated >= self.max_new_tokens => {
                    self.finish_text(tokenizer, &mut text_delta, FinishReason::MaxNewTokens)?
                }
                // The token could not be fed: its position would be past the context.
                None if self.context.len() + 1 > self.max_positions => {
                    self.finish_text(tokenizer, &mut text_delta, FinishReason::ContextFull)?
                }
                None => None,
            }
        };
        self.context.push(token);
        self.text.push_str(&text_delta);
        self.finished = finished;
        Ok(Step {
            token,
            text_delta,
            finished,
        })
    }

    /// Passes `delta` through the stop matcher into `out`.
    fn push_text(&mut self, delta: &str, out: &mut String) -> Option<FinishReason> {
        let (emitted, stopped) = self.stops.push(delta);
        out.push_str(&emitted);
        stopped.then_some(FinishReason::StopSequence)
    }

    /// Emits what the stop matcher holds back and ends with `reason`.
    fn flush_text(&mut self, out: &mut String, reason: FinishReason) -> Option<FinishReason> {
        out.push_str(&self.stops.flush());
        Some(reason)
    }

    /// Emits everything held back (detokenizer, then stop matcher).
    fn finish_text(
        &mut self,
        tokenizer: &Tokenizer,
        out: &mut String,
        reason: FinishReason,
    ) -> Result<Option<FinishReason>> {
        let tail = self.detokenizer.flush(tokenizer)?;
        Ok(self
            .push_text(&tail, out)
            .or_else(|| self.flush_text(out, reason)))
    }

    /// The prompt.
    pub fn prompt(&self) -> &[u32] {
        &self.context[..self.prompt_len]
    }

    /// Tokens generated so far.
    pub fn generated(&self) -> &[u32] {
        &self.context[self.prompt_len..]
    }

    /// Text emitted so far.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Why the generation ended, once it has.
    pub fn finished(&self) -> Option<FinishReason> {
        self.finished
    }
}

/// Finds stop sequences in streamed text, holding back any tail that could be
/// the beginning of one.
#[derive(Debug, Clone, Default)]
struct StopMatcher {
    stops: Vec<String>,
    held: String,
}

impl StopMatcher {
    fn new(stops: Vec<String>) -> Self {
        StopMatcher {
            stops,
            held: String::new(),
        }
    }

    /// Adds `text`; returns what can be emitted and whether a stop matched
    /// (the match and what follows it are dropped).
    fn push(&mut self, text: &str) -> (String, bool) {
        self.held.push_str(text);
        let first_match = self
            .stops
            .iter()
            .filter_map(|stop| self.held.find(stop.as_str()))
            .min();
        if let Some(at) = first_match {
            self.held.truncate(at);
            return (std::mem::take(&mut self.held), true);
        }
        let keep_from = self
            .held
            .char_indices()
            .map(|(i, _)| i)
            .find(|&i| {
                let tail = &self.held[i..];
                self.stops.iter().any(|stop| stop.starts_with(tail))
            })
            .unwrap_or(self.held.len());
        let rest = self.held.split_off(keep_from);
        (std::mem::replace(&mut self.held, rest), false)
    }

    fn flush(&mut self) -> String {
        std::mem::take(&mut self.held)
    }
}

/// A generation that owns everything it needs, to be stepped token by token.
#[derive(Debug, Clone)]
pub struct Generation {
    pipeline: Arc<Pipeline>,
    tokenizer: Arc<Tokenizer>,
    sequence: Sequence,
    /// Token to feed at the next step (`None` before the prefill).
    pending: Option<u32>,
    tokens: TokenLoop,
}

impl Generation {
    /// Checks the prompt and `params`; runs nothing yet.
    pub fn new(
        pipeline: Arc<Pipeline>,
        tokenizer: Arc<Tokenizer>,
        prompt_ids: Vec<u32>,
        params: SamplingParams,
    ) -> Result<Self> {
        let tokens = TokenLoop::new(&prompt_ids, &params, pipeline.max_positions())?;
        let vocab_size = pipeline.config().vocab_size;
        if let Some(&token) = prompt_ids.iter().find(|&&t| t as usize >= vocab_size) {
            return Err(Error::TokenOutOfRange { token, vocab_size });
        }
        Ok(Generation {
            sequence: pipeline.new_sequence(),
            pipeline,
            tokenizer,
            pending: None,
            tokens,
        })
    }

    /// Produces one token; the first call runs the whole prompt. On error
    /// nothing changes and the step may be retried.
    pub fn step(&mut self) -> Result<Step> {
        if self.tokens.finished().is_some() {
            return Err(Error::Finished);
        }
        // The caches are shared tensors: this copy costs no KV data.
        let mut sequence = self.sequence.clone();
        let logits = match self.pending {
            None => self.pipeline.prefill(&mut sequence, self.tokens.prompt())?,
            Some(token) => self.pipeline.decode(&mut sequence, token)?,
        };
        let step = self.tokens.on_logits(&self.tokenizer, &logits)?;
        self.sequence = sequence;
        self.pending = Some(step.token);
        Ok(step)
    }

    /// Tokens generated so far.
    pub fn tokens(&self) -> &[u32] {
        self.tokens.generated()
    }

    /// Text emitted so far.
    pub fn text(&self) -> &str {
        self.tokens.text()
    }

    /// Why the generation ended, once it has.
    pub fn finished(&self) -> Option<FinishReason> {
        self.tokens.finished()
    }

    /// Positions held in the KV caches.
    pub fn position(&self) -> usize {
        self.sequence.position()
    }
}

/// Generates until the end.
pub fn generate(
    pipeline: Arc<Pipeline>,
    tokenizer: Arc<Tokenizer>,
    prompt_ids: Vec<u32>,
    params: SamplingParams,
) -> Result<Output> {
    let mut generation = Generation::new(pipeline, tokenizer, prompt_ids, params)?;
    loop {
        let step = generation.step()?;
        if let Some(finish_reason) = step.finished {
            return Ok(Output {
                tokens: generation.tokens().to_vec(),
                text: generation.text().to_string(),
                finish_reason,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_matcher_holds_back_prefixes() {
        let mut m = StopMatcher::new(vec!["</s>".into(), "STOP".into()]);
        assert_eq!(m.push("Hello <"), ("Hello ".to_string(), false));
        assert_eq!(m.push("/"), (String::new(), false));
        assert_eq!(m.push("b> and S"), ("</b> and ".to_string(), false));
        assert_eq!(m.push("TOP more"), (String::new(), true));

        let mut m = StopMatcher::new(vec!["ab".into()]);
        assert_eq!(m.push("xa"), ("x".to_string(), false));
        assert_eq!(m.flush(), "a");

        let mut m = StopMatcher::new(vec![]);
        assert_eq!(m.push("é!"), ("é!".to_string(), false));

        // Earliest match wins, across stops.
        let mut m = StopMatcher::new(vec!["cd".into(), "b".into()]);
        assert_eq!(m.push("abcd"), ("a".to_string(), true));
        let mut m = StopMatcher::new(vec!["€".into()]);
        assert_eq!(m.push("a€b"), ("a".to_string(), true));
    }
}
