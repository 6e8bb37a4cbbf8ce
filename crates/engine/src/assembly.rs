//! A model's files arriving chunk by chunk, as the task manager serves
//! them (`model_chunk` queries): the browser's load path, for the CPU
//! backend (`engine_web`) and the WebGPU one (`frontend/gpu`) alike.
//!
//! [`ModelAssembly`] takes the manifest, then each file front to back:
//! every stage chunk is checked against the manifest's size and SHA-256 on
//! arrival, every tokenizer piece against its size. [`ModelAssembly::finish`]
//! checks each whole file (chunk count, size, SHA-256) and builds the
//! tokenizer; the caller turns the stage files into its own model. A
//! refused chunk changes nothing: the right one can still follow.
//!
//! ```no_run
//! # fn fetch(stage: usize, chunk: usize) -> Vec<u8> { Vec::new() }
//! # fn main() -> engine::Result<()> {
//! # let manifest_json: &[u8] = b"{}";
//! let mut model = engine::ModelAssembly::new(manifest_json)?;
//! for stage in 0..model.manifest().stages.len() {
//!     for chunk in 0..model.manifest().stages[stage].chunks.len() {
//!         model.add_stage_chunk(stage, chunk, &fetch(stage, chunk))?;
//!     }
//! }
//! // … the tokenizer's pieces likewise, then:
//! let assembled = model.finish()?;
//! # Ok(()) }
//! ```

use crate::error::{Error, Result};
use crate::manifest::Manifest;
use crate::tokenizer::Tokenizer;

/// A file assembled from its chunks, front to back.
#[derive(Debug, Default)]
struct File {
    bytes: Vec<u8>,
    chunks: usize,
}

impl File {
    /// Refuses any chunk but the next.
    fn expect_next(&self, name: impl FnOnce() -> String, index: usize) -> Result<()> {
        if index == self.chunks {
            Ok(())
        } else {
            Err(Error::ChunkOrder {
                file: name(),
                expected: self.chunks,
                found: index,
            })
        }
    }

    /// Refuses to end before every chunk arrived.
    fn expect_complete(&self, name: impl FnOnce() -> String, expected: usize) -> Result<()> {
        if self.chunks == expected {
            Ok(())
        } else {
            Err(Error::Incomplete {
                file: name(),
                received: self.chunks,
                expected,
            })
        }
    }
}

/// A model's files arriving chunk by chunk.
#[derive(Debug)]
pub struct ModelAssembly {
    manifest: Manifest,
    tokenizer: File,
    stages: Vec<File>,
}

/// Every file of a model, checked whole: its manifest, its tokenizer
/// (built) and its stage files in order.
#[derive(Debug)]
pub struct AssembledModel {
    pub manifest: Manifest,
    pub tokenizer: Tokenizer,
    pub stages: Vec<Vec<u8>>,
}

impl ModelAssembly {
    /// Parses and validates `manifest.json`.
    pub fn new(manifest_json: &[u8]) -> Result<Self> {
        let manifest = Manifest::from_json(manifest_json)?;
        let stages = manifest.stages.iter().map(|_| File::default()).collect();
        Ok(ModelAssembly {
            manifest,
            tokenizer: File::default(),
            stages,
        })
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Pieces of `tokenizer.json`: its size cut into `chunk_size` pieces.
    pub fn tokenizer_chunks(&self) -> usize {
        let m = &self.manifest;
        usize::try_from(m.tokenizer.size.div_ceil(m.chunk_size)).unwrap_or(usize::MAX)
    }

    /// Bytes of every file (stages and tokenizer).
    pub fn total_bytes(&self) -> u64 {
        let m = &self.manifest;
        m.stages
            .iter()
            .fold(m.tokenizer.size, |sum, s| sum.saturating_add(s.size))
    }

    /// Adds piece `index` of `tokenizer.json` (pieces come in order). The
    /// manifest has no hash per piece: [`ModelAssembly::finish`] checks
    /// the whole file.
    pub fn add_tokenizer_chunk(&mut self, index: usize, bytes: &[u8]) -> Result<()> {
        let chunks = self.tokenizer_chunks();
        self.tokenizer.expect_next(|| "tokenizer".into(), index)?;
        if index >= chunks {
            return Err(Error::TokenizerChunkOutOfRange {
                chunk: index,
                chunks,
            });
        }
        let m = &self.manifest;
        let expected = (m.tokenizer.size - index as u64 * m.chunk_size).min(m.chunk_size);
        if bytes.len() as u64 != expected {
            return Err(Error::SizeMismatch {
                what: format!("tokenizer chunk {index}"),
                expected,
                found: bytes.len() as u64,
            });
        }
        self.tokenizer.bytes.extend_from_slice(bytes);
        self.tokenizer.chunks += 1;
        Ok(())
    }

    /// Adds chunk `index` of stage `stage` (chunks come in order), checked
    /// against the manifest's size and SHA-256 for it. The first chunk
    /// reserves the whole file, or says the memory is not there.
    pub fn add_stage_chunk(&mut self, stage: usize, index: usize, bytes: &[u8]) -> Result<()> {
        self.manifest.verify_chunk(stage, index, bytes)?;
        let (Some(meta), Some(file)) =
            (self.manifest.stages.get(stage), self.stages.get_mut(stage))
        else {
            return Err(Error::StageOutOfRange {
                stage,
                stages: self.manifest.stages.len(),
            });
        };
        file.expect_next(|| format!("stage {stage}"), index)?;
        if file.bytes.is_empty() {
            let size = usize::try_from(meta.size).unwrap_or(usize::MAX);
            file.bytes
                .try_reserve_exact(size)
                .map_err(|_| Error::OutOfMemory {
                    what: format!("stage {stage}"),
                    bytes: size,
                })?;
        }
        file.bytes.extend_from_slice(bytes);
        file.chunks += 1;
        Ok(())
    }

    /// Checks every file whole (chunk count, size and SHA-256) and builds
    /// the tokenizer.
    pub fn finish(self) -> Result<AssembledModel> {
        let tokenizer_chunks = self.tokenizer_chunks();
        let manifest = self.manifest;
        for (meta, file) in manifest.stages.iter().zip(&self.stages) {
            file.expect_complete(|| format!("stage {}", meta.index), meta.chunks.len())?;
            manifest.verify_stage(meta.index, &file.bytes)?;
        }
        self.tokenizer
            .expect_complete(|| "tokenizer".into(), tokenizer_chunks)?;
        manifest.verify_tokenizer(&self.tokenizer.bytes)?;
        let tokenizer = Tokenizer::new(&manifest, &self.tokenizer.bytes)?;
        Ok(AssembledModel {
            manifest,
            tokenizer,
            stages: self.stages.into_iter().map(|f| f.bytes).collect(),
        })
    }
}
