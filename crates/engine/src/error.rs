//! The one error type of the engine.
//!
//! Every fallible function of the crate returns [`Result`]. Messages say what
//! was expected and what was found, so that a canister can hand them to its
//! caller unchanged.

use thiserror::Error;

/// Result alias used throughout the engine.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while loading or running a model.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum Error {
    /// `manifest.json` is not valid JSON or does not have the expected fields.
    #[error("manifest.json is not valid: {0}")]
    ManifestJson(String),

    /// The manifest was written for another version of the format.
    #[error("unsupported manifest format_version: expected {expected}, found {found}")]
    UnsupportedFormatVersion { expected: u32, found: u32 },

    /// The manifest names an architecture the engine cannot run.
    #[error("unknown architecture: expected one of {supported:?}, found {found:?}")]
    UnknownArchitecture {
        found: String,
        supported: &'static [&'static str],
    },

    /// The manifest parses but is inconsistent (layer ranges, chunks, I/O names...).
    #[error("invalid manifest: {0}")]
    InvalidManifest(String),

    /// Bytes do not hash to what the manifest says.
    #[error("sha256 mismatch for {what}: expected {expected}, found {found}")]
    HashMismatch {
        what: String,
        expected: String,
        found: String,
    },

    /// Bytes do not have the length the manifest says.
    #[error("size mismatch for {what}: expected {expected} bytes, found {found}")]
    SizeMismatch {
        what: String,
        expected: u64,
        found: u64,
    },

    /// A stage index past the last stage.
    #[error("stage {stage} out of range: the model has {stages} stages")]
    StageOutOfRange { stage: usize, stages: usize },

    /// A chunk index past the last chunk of a stage.
    #[error("chunk {chunk} out of range: stage {stage} has {chunks} chunks")]
    ChunkOutOfRange {
        stage: usize,
        chunk: usize,
        chunks: usize,
    },

    /// A stage file named by the manifest is not in the model directory.
    #[error("stage file {path} named by the manifest is missing")]
    MissingStageFile { path: String },

    /// Any other file of a model directory could not be read.
    #[error("cannot read {path}: {message}")]
    Io { path: String, message: String },

    /// The stage bytes are not an ONNX model tract can load.
    #[error("invalid ONNX: {0}")]
    InvalidOnnx(String),

    /// The ONNX graph does not have the inputs/outputs the manifest declares.
    #[error("stage {stage} does not match its manifest entry: {message}")]
    StageMismatch { stage: usize, message: String },

    /// Data handed to a stage has the wrong shape.
    #[error("{what}: expected {expected}, found {found}")]
    ShapeMismatch {
        what: String,
        expected: String,
        found: String,
    },

    /// The input starts at another position than the KV cache holds.
    #[error("position mismatch: the KV cache holds {expected} positions, input starts at {found}")]
    PositionMismatch { expected: usize, found: usize },

    /// A token id outside the vocabulary.
    #[error("token id {token} out of range: vocabulary size is {vocab_size}")]
    TokenOutOfRange { token: u32, vocab_size: usize },

    /// The prompt is empty.
    #[error("empty prompt: expected at least one token")]
    EmptyPrompt,

    /// The prompt (plus what the sequence already holds) exceeds the context.
    #[error("prompt too long: {tokens} tokens, the context holds at most {max}")]
    PromptTooLong { tokens: usize, max: usize },

    /// tract failed while running a stage.
    #[error("inference failed: {0}")]
    Inference(String),

    /// `tokenizer.json` could not be loaded, or encoding/decoding failed.
    #[error("tokenizer: {0}")]
    Tokenizer(String),

    /// The chat template could not be compiled or rendered.
    #[error("chat template: {0}")]
    ChatTemplate(String),

    /// Sampling parameters out of their domain.
    #[error("invalid sampling parameters: {0}")]
    InvalidParams(String),

    /// The weights of a stage could not be read for the engine's own forward pass.
    #[error("stage weights: {0}")]
    Weights(#[from] crate::llama::WeightsError),

    /// `step` was called on a generation that already finished.
    #[error("generation already finished")]
    Finished,

    /// Memory could not be reserved (the heap is full).
    #[error("cannot reserve {bytes} bytes for {what}: out of memory")]
    OutOfMemory { what: String, bytes: usize },

    /// A chunk arrived out of order (a file is assembled front to back).
    #[error("{file}: expected chunk {expected} next, got chunk {found}")]
    ChunkOrder {
        file: String,
        expected: usize,
        found: usize,
    },

    /// A tokenizer piece past the end of `tokenizer.json`.
    #[error("tokenizer chunk {chunk} out of range: the tokenizer has {chunks} chunks")]
    TokenizerChunkOutOfRange { chunk: usize, chunks: usize },

    /// A model was finished before every chunk of a file arrived.
    #[error("{file} is incomplete: {received} of {expected} chunks received")]
    Incomplete {
        file: String,
        received: usize,
        expected: usize,
    },
}

impl Error {
    pub(crate) fn inference(err: impl std::fmt::Display) -> Self {
        Error::Inference(format!("{err:#}"))
    }
}

impl From<model_format::FormatError> for Error {
    /// The format's errors are the engine's own, variant for variant.
    fn from(e: model_format::FormatError) -> Error {
        use model_format::FormatError as F;
        match e {
            F::ManifestJson(a) => Error::ManifestJson(a),
            F::UnsupportedFormatVersion { expected, found } => {
                Error::UnsupportedFormatVersion { expected, found }
            }
            F::UnknownArchitecture { found, supported } => {
                Error::UnknownArchitecture { found, supported }
            }
            F::InvalidManifest(a) => Error::InvalidManifest(a),
            F::HashMismatch {
                what,
                expected,
                found,
            } => Error::HashMismatch {
                what,
                expected,
                found,
            },
            F::SizeMismatch {
                what,
                expected,
                found,
            } => Error::SizeMismatch {
                what,
                expected,
                found,
            },
            F::StageOutOfRange { stage, stages } => Error::StageOutOfRange { stage, stages },
            F::ChunkOutOfRange {
                stage,
                chunk,
                chunks,
            } => Error::ChunkOutOfRange {
                stage,
                chunk,
                chunks,
            },
        }
    }
}
