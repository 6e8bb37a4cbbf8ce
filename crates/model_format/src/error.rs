//! The error of manifest parsing and integrity checks.

use thiserror::Error;

/// Result alias of this crate.
pub type Result<T, E = FormatError> = std::result::Result<T, E>;

/// A manifest that does not parse or validate, or bytes that do not match it.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum FormatError {
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
}
