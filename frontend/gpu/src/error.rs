//! Errors of the GPU forward pass.

use thiserror::Error;

/// Everything that can go wrong between finding an adapter and reading back
/// logits. Shape errors are found on the host before anything is dispatched.
#[derive(Debug, Error)]
pub enum GpuError {
    #[error(
        "no GPU adapter found: {message}. Natively this crate needs a Vulkan driver \
         (on Debian: apt-get install mesa-vulkan-drivers libvulkan1 for Mesa's lavapipe); \
         in a browser, WebGPU"
    )]
    NoAdapter { message: String },
    #[error("requesting a device from adapter `{adapter}` failed: {message}")]
    RequestDevice { adapter: String, message: String },
    #[error("{op}: {message}")]
    Shape { op: &'static str, message: String },
    #[error("{op}: buffer `{buffer}` holds {have} values, needs {need}")]
    BufferTooSmall {
        op: &'static str,
        buffer: &'static str,
        have: u64,
        need: u64,
    },
    #[error("{op}: {groups} workgroups along one dimension, over the device limit of {limit}")]
    TooManyWorkgroups {
        op: &'static str,
        groups: u64,
        limit: u32,
    },
    #[error("{what}: {bytes} bytes, over the device's {limit}-byte limit for one buffer binding")]
    BufferTooLarge {
        what: String,
        bytes: u64,
        limit: u64,
    },
    #[error("reading back `{buffer}` failed: {message}")]
    Readback {
        buffer: &'static str,
        message: String,
    },
    #[error("token id {id} is outside the vocabulary of {vocab}")]
    TokenOutOfRange { id: u32, vocab: usize },
    #[error("no tokens to run")]
    EmptyInput,
    #[error("the KV cache is full: {needed} positions needed, capacity {capacity}")]
    ContextFull { needed: usize, capacity: usize },
    #[error("the messages are not a JSON list of {{role, content}}: {0}")]
    Messages(String),
    #[error("the seed must have 32 bytes, found {found}")]
    SeedLength { found: usize },
    #[error("no random bytes for the sampling seed: {0}")]
    Entropy(String),
    #[error("{0}")]
    State(String),
    #[error("the token callback failed: {0}")]
    Callback(String),
    #[error("weights: {0}")]
    Weights(String),
    #[error(transparent)]
    Engine(#[from] engine::Error),
}

pub type Result<T, E = GpuError> = std::result::Result<T, E>;
