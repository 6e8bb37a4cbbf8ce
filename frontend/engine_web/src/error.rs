//! The errors of the browser API; JavaScript sees their messages.

use thiserror::Error;

pub type Result<T, E = WebError> = std::result::Result<T, E>;

/// Everything that can go wrong loading a model or generating in the browser.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum WebError {
    /// The engine refused: manifest, hashes, sizes, tract, tokenizer, sampling.
    #[error(transparent)]
    Engine(#[from] engine::Error),

    /// The chat passed in is not a JSON list of `{role, content}`.
    #[error("the messages are not a JSON list of {{role, content}}: {0}")]
    Messages(String),

    /// A sampling seed of the wrong length.
    #[error("the seed must have 32 bytes, found {found}")]
    SeedLength { found: usize },

    /// No random bytes for a seed.
    #[error("no random bytes for the sampling seed: {0}")]
    Entropy(String),

    /// A run was used after the model it came from was replaced, or twice.
    #[error("{0}")]
    State(String),
}
