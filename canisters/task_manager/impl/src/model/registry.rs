//! The model registry: manifests and their chunks, in stable memory.
//!
//! A model is registered from its `manifest.json`; its files are then
//! uploaded chunk by chunk, each checked against the manifest (size and
//! SHA-256) before it is stored. Stage chunks are the manifest's own; the
//! tokenizer, which the manifest hashes whole, is cut into `chunk_size`
//! pieces and checked when the last piece arrives. Chunks are keyed by a
//! numeric model id so that keys stay small and fixed-size.

use std::borrow::Cow;
use std::rc::Rc;

use candid::{CandidType, Deserialize};
use ic_stable_structures::storable::Bound;
use ic_stable_structures::Storable;
use model_format::Manifest;
use task_manager_api::{ChunkRef, Error, ModelFile, ModelInfo};

use crate::state::State;

/// The stored form of a model.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ModelRecord {
    /// The key of its chunks.
    pub id: u32,
    #[serde(with = "serde_bytes")]
    pub manifest_json: Vec<u8>,
    pub created_at_ns: u64,
}

/// Where a chunk lies: 12 big-endian bytes, so that the chunks of one
/// model, and of one file, are contiguous in key order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ChunkKey {
    pub model: u32,
    /// 0: the tokenizer; 1 + s: stage s.
    pub file: u32,
    pub index: u32,
}

impl ChunkKey {
    fn new(model: u32, file: ModelFile, index: u32) -> ChunkKey {
        let file = match file {
            ModelFile::Tokenizer => 0,
            ModelFile::Stage(stage) => stage.saturating_add(1),
        };
        ChunkKey { model, file, index }
    }

    /// All keys of one model.
    fn model_range(model: u32) -> std::ops::RangeInclusive<ChunkKey> {
        ChunkKey {
            model,
            file: 0,
            index: 0,
        }..=ChunkKey {
            model,
            file: u32::MAX,
            index: u32::MAX,
        }
    }
}

impl Storable for ChunkKey {
    fn to_bytes(&self) -> Cow<'_, [u8]> {
        Cow::Owned(self.into_bytes())
    }

    fn into_bytes(self) -> Vec<u8> {
        [self.model, self.file, self.index]
            .iter()
            .flat_map(|n| n.to_be_bytes())
            .collect()
    }

    fn from_bytes(bytes: Cow<'_, [u8]>) -> Self {
        let n = |i: usize| {
            let mut word = [0u8; 4];
            word.copy_from_slice(&bytes[i * 4..i * 4 + 4]);
            u32::from_be_bytes(word)
        };
        ChunkKey {
            model: n(0),
            file: n(1),
            index: n(2),
        }
    }

    const BOUND: Bound = Bound::Bounded {
        max_size: 12,
        is_fixed_size: true,
    };
}

/// The longest model name.
pub const MAX_NAME_LEN: usize = 64;

fn validate_name(name: &str) -> Result<(), Error> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidManifest {
            reason: format!(
                "model name {name:?}: expected 1 to {MAX_NAME_LEN} characters from [A-Za-z0-9._-]"
            ),
        })
    }
}

/// The manifest of a stored model, parsed once per canister lifetime.
pub fn manifest(state: &State, name: &str) -> Result<(ModelRecord, Rc<Manifest>), Error> {
    let record = state
        .models
        .get(&name.to_string())
        .ok_or_else(|| Error::UnknownModel {
            model: name.to_string(),
        })?;
    if let Some(parsed) = state.parsed_manifests.borrow().get(&record.id) {
        return Ok((record, Rc::clone(parsed)));
    }
    // Validated when it was stored; parsing again cannot fail but for a
    // change of the manifest format, which is reported, not trapped.
    let parsed = Rc::new(Manifest::from_json(&record.manifest_json).map_err(|e| {
        Error::InvalidManifest {
            reason: e.to_string(),
        }
    })?);
    state
        .parsed_manifests
        .borrow_mut()
        .insert(record.id, Rc::clone(&parsed));
    Ok((record, parsed))
}

/// How many chunks `file` has.
pub fn chunk_count(manifest: &Manifest, file: ModelFile) -> Option<u32> {
    match file {
        ModelFile::Tokenizer => {
            let n = manifest.tokenizer.size.div_ceil(manifest.chunk_size).max(1);
            u32::try_from(n).ok()
        }
        ModelFile::Stage(stage) => manifest
            .stages
            .get(stage as usize)
            .and_then(|s| u32::try_from(s.chunks.len()).ok()),
    }
}

/// Every file of a model, in upload order.
pub fn files(manifest: &Manifest) -> impl Iterator<Item = ModelFile> + '_ {
    std::iter::once(ModelFile::Tokenizer)
        .chain((0..manifest.stages.len() as u32).map(ModelFile::Stage))
}

/// Registers a model (idempotent for the same manifest bytes).
pub fn create_model(
    state: &mut State,
    manifest_json: Vec<u8>,
    now: u64,
) -> Result<ModelInfo, Error> {
    let parsed = Manifest::from_json(&manifest_json).map_err(|e| Error::InvalidManifest {
        reason: e.to_string(),
    })?;
    validate_name(&parsed.name)?;
    if let Some(existing) = state.models.get(&parsed.name) {
        return if existing.manifest_json == manifest_json {
            Ok(info_of(state, &parsed.name, &existing, &parsed))
        } else {
            Err(Error::ModelExists { model: parsed.name })
        };
    }
    let id = state.next_model_id();
    let record = ModelRecord {
        id,
        manifest_json,
        created_at_ns: now,
    };
    // A fresh id has no chunks yet.
    let info = info_of(state, &parsed.name, &record, &parsed);
    state.models.insert(parsed.name.clone(), record);
    state
        .parsed_manifests
        .borrow_mut()
        .insert(id, Rc::new(parsed));
    Ok(info)
}

/// Checks and stores one chunk; returns the model's progress.
pub fn upload_chunk(
    state: &mut State,
    chunk: &ChunkRef,
    bytes: Vec<u8>,
) -> Result<(u64, u64), Error> {
    let (record, manifest) = manifest(state, &chunk.model)?;
    let count = chunk_count(&manifest, chunk.file).ok_or_else(|| Error::UnknownChunk {
        model: chunk.model.clone(),
        file: chunk.file,
        index: chunk.index,
        chunks: 0,
    })?;
    if chunk.index >= count {
        return Err(Error::UnknownChunk {
            model: chunk.model.clone(),
            file: chunk.file,
            index: chunk.index,
            chunks: count,
        });
    }
    let key = ChunkKey::new(record.id, chunk.file, chunk.index);
    let mismatch = |reason: String| Error::ChunkMismatch { reason };
    match chunk.file {
        ModelFile::Stage(stage) => manifest
            .verify_chunk(stage as usize, chunk.index as usize, &bytes)
            .map_err(|e| mismatch(e.to_string()))?,
        ModelFile::Tokenizer => {
            let start = u64::from(chunk.index) * manifest.chunk_size;
            let expected = manifest.chunk_size.min(manifest.tokenizer.size - start);
            if bytes.len() as u64 != expected {
                return Err(mismatch(format!(
                    "tokenizer chunk {}: expected {expected} bytes, found {}",
                    chunk.index,
                    bytes.len()
                )));
            }
        }
    }
    if !state.chunks.contains_key(&key) {
        state.chunks.insert(key, bytes);
    }
    if chunk.file == ModelFile::Tokenizer {
        verify_tokenizer_when_complete(state, record.id, &manifest, count)?;
    }
    let info = info_of(state, &chunk.model, &record, &manifest);
    Ok((info.chunks_present, info.chunks_total))
}

/// Once every tokenizer piece is there, the whole file must hash to the
/// manifest's SHA-256; if it does not, the pieces are dropped.
fn verify_tokenizer_when_complete(
    state: &mut State,
    model: u32,
    manifest: &Manifest,
    count: u32,
) -> Result<(), Error> {
    let keys = (0..count).map(|i| ChunkKey::new(model, ModelFile::Tokenizer, i));
    if !keys.clone().all(|k| state.chunks.contains_key(&k)) {
        return Ok(());
    }
    let mut whole = Vec::with_capacity(manifest.tokenizer.size as usize);
    for key in keys.clone() {
        whole.extend(state.chunks.get(&key).unwrap_or_default());
    }
    if let Err(e) = manifest.verify_tokenizer(&whole) {
        for key in keys {
            state.chunks.remove(&key);
        }
        return Err(Error::TokenizerMismatch {
            reason: e.to_string(),
        });
    }
    Ok(())
}

/// The chunks still to upload, in upload order.
pub fn missing_chunks(state: &State, name: &str) -> Result<Vec<ChunkRef>, Error> {
    let (record, manifest) = manifest(state, name)?;
    let mut missing = Vec::new();
    for file in files(&manifest) {
        for index in 0..chunk_count(&manifest, file).unwrap_or(0) {
            if !state
                .chunks
                .contains_key(&ChunkKey::new(record.id, file, index))
            {
                missing.push(ChunkRef {
                    model: name.to_string(),
                    file,
                    index,
                });
            }
        }
    }
    Ok(missing)
}

/// A stored chunk.
pub fn chunk(state: &State, chunk: &ChunkRef) -> Result<Vec<u8>, Error> {
    let (record, manifest) = manifest(state, &chunk.model)?;
    let count = chunk_count(&manifest, chunk.file).unwrap_or(0);
    let unknown = || Error::UnknownChunk {
        model: chunk.model.clone(),
        file: chunk.file,
        index: chunk.index,
        chunks: count,
    };
    if chunk.index >= count {
        return Err(unknown());
    }
    state
        .chunks
        .get(&ChunkKey::new(record.id, chunk.file, chunk.index))
        .ok_or_else(unknown)
}

/// What the registry knows of a model.
pub fn model_info(state: &State, name: &str) -> Result<ModelInfo, Error> {
    let (record, manifest) = manifest(state, name)?;
    Ok(info_of(state, name, &record, &manifest))
}

/// [`model_info`] for a model already looked up.
fn info_of(state: &State, name: &str, record: &ModelRecord, manifest: &Manifest) -> ModelInfo {
    let chunks_total: u64 = files(manifest)
        .map(|f| u64::from(chunk_count(manifest, f).unwrap_or(0)))
        .sum();
    let chunks_present = state
        .chunks
        .keys_range(ChunkKey::model_range(record.id))
        .count() as u64;
    ModelInfo {
        name: name.to_string(),
        architecture: manifest.architecture.clone(),
        num_layers: manifest.config.num_layers as u32,
        stages: manifest.stages.len() as u32,
        total_bytes: manifest.tokenizer.size + manifest.stages.iter().map(|s| s.size).sum::<u64>(),
        chunks_total,
        chunks_present,
        created_at_ns: record.created_at_ns,
    }
}

/// Removes a model and every chunk of it.
pub fn delete_model(state: &mut State, name: &str) -> Result<(), Error> {
    let (record, _) = manifest(state, name)?;
    if state.pipelines.iter().any(|p| p.value().model == name) {
        return Err(Error::ModelInUse {
            model: name.to_string(),
        });
    }
    let keys: Vec<ChunkKey> = state
        .chunks
        .keys_range(ChunkKey::model_range(record.id))
        .collect();
    for key in keys {
        state.chunks.remove(&key);
    }
    state.models.remove(&name.to_string());
    state.parsed_manifests.borrow_mut().remove(&record.id);
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::memory::Memories;
    use ic_stable_structures::DefaultMemoryImpl;
    use std::path::Path;

    /// A file of the committed tiny model, cut in two stages.
    pub(crate) fn tiny_file(name: &str) -> Vec<u8> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../models/tiny-llama/stages-2")
            .join(name);
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// Every chunk of the tiny model with its bytes, in upload order.
    pub(crate) fn tiny_chunks() -> Vec<(ChunkRef, Vec<u8>)> {
        let manifest = Manifest::from_json(&tiny_file("manifest.json")).unwrap();
        let chunk = |file, index| ChunkRef {
            model: manifest.name.clone(),
            file,
            index,
        };
        let mut out = Vec::new();
        let tokenizer = tiny_file(&manifest.tokenizer.file);
        for (i, piece) in tokenizer.chunks(manifest.chunk_size as usize).enumerate() {
            out.push((chunk(ModelFile::Tokenizer, i as u32), piece.to_vec()));
        }
        for stage in &manifest.stages {
            let bytes = tiny_file(&stage.file);
            for (i, c) in stage.chunks.iter().enumerate() {
                let range = c.offset as usize..(c.offset + c.size) as usize;
                out.push((
                    chunk(ModelFile::Stage(stage.index as u32), i as u32),
                    bytes[range].to_vec(),
                ));
            }
        }
        out
    }

    fn with_tiny_model() -> State {
        let mut state = State::in_memory();
        create_model(&mut state, tiny_file("manifest.json"), 7).unwrap();
        state
    }

    #[test]
    fn uploads_resume_and_complete() {
        let mut state = with_tiny_model();
        let chunks = tiny_chunks();
        let total = chunks.len() as u64;
        assert_eq!(
            missing_chunks(&state, "tiny-llama").unwrap().len(),
            chunks.len()
        );
        let (first, rest) = chunks.split_at(chunks.len() / 2);
        for (chunk, bytes) in first {
            upload_chunk(&mut state, chunk, bytes.clone()).unwrap();
        }
        let missing = missing_chunks(&state, "tiny-llama").unwrap();
        assert_eq!(
            missing,
            rest.iter().map(|(c, _)| c.clone()).collect::<Vec<_>>()
        );
        // Uploading again changes nothing.
        let progress = upload_chunk(&mut state, &first[0].0, first[0].1.clone()).unwrap();
        assert_eq!(progress, (first.len() as u64, total));
        for (chunk, bytes) in rest {
            upload_chunk(&mut state, chunk, bytes.clone()).unwrap();
        }
        assert!(missing_chunks(&state, "tiny-llama").unwrap().is_empty());
        let info = model_info(&state, "tiny-llama").unwrap();
        assert!(info.complete());
        assert_eq!(info.created_at_ns, 7);
        // What is stored is what was sent, and reassembles the stage file.
        for (chunk_ref, bytes) in &chunks {
            assert_eq!(&chunk(&state, chunk_ref).unwrap(), bytes);
        }
        let stage1: Vec<u8> = chunks
            .iter()
            .filter(|(c, _)| c.file == ModelFile::Stage(1))
            .flat_map(|(_, b)| b.clone())
            .collect();
        assert_eq!(stage1, tiny_file("stage-1.onnx"));
    }

    #[test]
    fn bad_chunks_are_refused_and_not_stored() {
        let mut state = with_tiny_model();
        let chunks = tiny_chunks();
        let (stage_chunk, bytes) = chunks
            .iter()
            .find(|(c, _)| c.file == ModelFile::Stage(0))
            .unwrap();
        let mut corrupted = bytes.clone();
        corrupted[10] ^= 1;
        assert!(matches!(
            upload_chunk(&mut state, stage_chunk, corrupted),
            Err(Error::ChunkMismatch { reason }) if reason.contains("sha256") || reason.contains("SHA")
        ));
        assert!(matches!(
            upload_chunk(&mut state, stage_chunk, bytes[1..].to_vec()),
            Err(Error::ChunkMismatch { .. })
        ));
        let beyond = ChunkRef {
            index: 10_000,
            ..stage_chunk.clone()
        };
        assert!(matches!(
            upload_chunk(&mut state, &beyond, bytes.clone()),
            Err(Error::UnknownChunk { index: 10_000, .. })
        ));
        let no_stage = ChunkRef {
            file: ModelFile::Stage(9),
            ..stage_chunk.clone()
        };
        assert!(matches!(
            upload_chunk(&mut state, &no_stage, bytes.clone()),
            Err(Error::UnknownChunk { chunks: 0, .. })
        ));
        let no_model = ChunkRef {
            model: "nope".into(),
            ..stage_chunk.clone()
        };
        assert_eq!(
            upload_chunk(&mut state, &no_model, bytes.clone()),
            Err(Error::UnknownModel {
                model: "nope".into()
            })
        );
        assert!(state.chunks.is_empty());
    }

    #[test]
    fn a_wrong_tokenizer_is_dropped_whole() {
        let mut state = with_tiny_model();
        let pieces: Vec<_> = tiny_chunks()
            .into_iter()
            .filter(|(c, _)| c.file == ModelFile::Tokenizer)
            .collect();
        let (last, rest) = pieces.split_last().unwrap();
        for (chunk, bytes) in rest {
            upload_chunk(&mut state, chunk, bytes.clone()).unwrap();
        }
        let mut wrong = last.1.clone();
        let end = wrong.len() - 1;
        wrong[end] ^= 0x20;
        assert!(matches!(
            upload_chunk(&mut state, &last.0, wrong),
            Err(Error::TokenizerMismatch { .. })
        ));
        assert!(state.chunks.is_empty(), "tokenizer pieces were kept");
        for (chunk, bytes) in &pieces {
            upload_chunk(&mut state, chunk, bytes.clone()).unwrap();
        }
        assert_eq!(state.chunks.len(), pieces.len() as u64);
    }

    #[test]
    fn models_survive_reopening_and_deletion_removes_chunks() {
        let memory = DefaultMemoryImpl::default();
        let mut state = State::open(&Memories::new(memory.clone()));
        create_model(&mut state, tiny_file("manifest.json"), 1).unwrap();
        for (chunk, bytes) in tiny_chunks() {
            upload_chunk(&mut state, &chunk, bytes).unwrap();
        }
        drop(state);
        // As after an upgrade: the same stable memory, a fresh heap.
        let mut state = State::open(&Memories::new(memory));
        assert!(model_info(&state, "tiny-llama").unwrap().complete());
        delete_model(&mut state, "tiny-llama").unwrap();
        assert!(state.chunks.is_empty());
        assert!(state.models.is_empty());
        // Ids are not reused.
        let again = create_model(&mut state, tiny_file("manifest.json"), 2).unwrap();
        assert_eq!(again.chunks_present, 0);
        assert_eq!(state.models.get(&"tiny-llama".to_string()).unwrap().id, 1);
    }
}
