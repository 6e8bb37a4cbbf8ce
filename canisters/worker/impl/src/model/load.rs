//! Loading an assignment: which chunks to pull, each checked as it
//! arrives, then the stages loaded from stable memory onto the engine's own
//! llama forward pass ([`LlamaLoader`]): q8 stages as they are, ONNX `f32`
//! stages from their initializers (read, then converted in a message of
//! its own). tract is not used, so LTO leaves it out of the module.

use model_format::Manifest;
use task_manager_api::{ChunkRef, ModelFile};
use worker_api::load_stages::LoadStagesArgs;
use worker_api::status::LoadState;
use worker_api::WorkerError;

use std::rc::Rc;

use engine::llama::{LlamaLoader, LlamaStage};
use engine::Tokenizer;

use super::assignment::Assignment;
use super::runtime::Runtime;
use crate::state::{AssignmentCell, ChunkKey, State};

/// What the last completed load cost (the worker's `status` shows it).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoadReport {
    pub stages: Vec<u32>,
    /// Bytes pulled and verified (stages and, on the driver, tokenizer).
    pub bytes: u64,
    pub chunks: u32,
    /// Instructions to load the stages (all load messages).
    pub load_instructions: u64,
    /// Messages the load took (one phase of one stage each).
    pub load_messages: u32,
    /// The most instructions one of them used.
    pub load_max_message: u64,
}

/// What a new load must do.
#[derive(Debug, PartialEq, Eq)]
pub enum LoadStart {
    /// The same assignment is loaded already (reported ready at once).
    Done,
    /// Pull these chunks (none stored yet), then finish.
    Pull {
        epoch: u64,
        chunks: Vec<(ChunkKey, ChunkRef)>,
    },
}

fn file_key(file: ModelFile) -> u32 {
    match file {
        ModelFile::Tokenizer => 0,
        ModelFile::Stage(s) => s + 1,
    }
}

/// Every chunk of an assignment's files.
fn all_chunks(a: &Assignment, manifest: &Manifest) -> Vec<(ChunkKey, ChunkRef)> {
    let mut files = Vec::new();
    if a.is_driver() {
        let n = manifest.tokenizer.size.div_ceil(manifest.chunk_size).max(1) as u32;
        files.push((ModelFile::Tokenizer, n));
    }
    for &s in &a.stages {
        let n = manifest.stages[s as usize].chunks.len() as u32;
        files.push((ModelFile::Stage(s), n));
    }
    files
        .into_iter()
        .flat_map(|(file, n)| {
            (0..n).map(move |index| {
                (
                    ChunkKey {
                        file: file_key(file),
                        index,
                    },
                    ChunkRef {
                        model: a.model.clone(),
                        file,
                        index,
                    },
                )
            })
        })
        .collect()
}

/// Starts loading `args` at `now`: checks it, keeps the chunks already
/// verified for the same model files, and says what to pull. Jobs running
/// on the old assignment end (failed, reported to the task manager).
pub fn begin(
    state: &mut State,
    args: LoadStagesArgs,
    me: candid::Principal,
    now: u64,
) -> Result<LoadStart, WorkerError> {
    let (assignment, manifest) = Assignment::check(args, me)?;
    if matches!(state.load_state, LoadState::Loading { .. }) {
        return Err(WorkerError::Busy);
    }
    if state.assignment() == Some(&assignment) && state.runtime.is_some() {
        state.report_load_end(state.load_epoch, None, now);
        return Ok(LoadStart::Done);
    }
    let same_files = state.assignment().is_some_and(|old| {
        old.manifest_json == assignment.manifest_json && old.stages == assignment.stages
    });
    if !same_files {
        state.chunks.clear_new();
    }
    let all = all_chunks(&assignment, &manifest);
    let total = all.len() as u32;
    let chunks: Vec<_> = all
        .into_iter()
        .filter(|(key, _)| !state.chunks.contains_key(key))
        .collect();
    state
        .assignment
        .set(AssignmentCell(Some(assignment.clone())));
    state.manifest = Some(Rc::new(manifest));
    state.runtime = None;
    state.fail_running_jobs(
        &WorkerError::InvalidAssignment {
            reason: "the worker was given a new assignment while the job ran".into(),
        },
        now,
    );
    state.load_epoch += 1;
    state.load_state = LoadState::Loading {
        chunks_done: total - chunks.len() as u32,
        chunks_total: total,
    };
    Ok(LoadStart::Pull {
        epoch: state.load_epoch,
        chunks,
    })
}

fn check_epoch(state: &State, epoch: u64) -> Result<(), WorkerError> {
    if state.load_epoch == epoch {
        Ok(())
    } else {
        Err(WorkerError::InvalidAssignment {
            reason: "a newer assignment replaced this one while it loaded".into(),
        })
    }
}

/// The assignment's manifest, parsed once per assignment (or once after
/// an upgrade): pulling checks hundreds of chunks against it.
fn manifest(state: &mut State) -> Result<Rc<Manifest>, WorkerError> {
    if let Some(m) = &state.manifest {
        return Ok(Rc::clone(m));
    }
    let assignment = state.assignment().ok_or(WorkerError::NotLoaded)?;
    let parsed = Rc::new(Manifest::from_json(&assignment.manifest_json).map_err(|e| {
        WorkerError::InvalidAssignment {
            reason: e.to_string(),
        }
    })?);
    state.manifest = Some(Rc::clone(&parsed));
    Ok(parsed)
}

/// Checks and stores one pulled chunk.
pub fn store_chunk(
    state: &mut State,
    epoch: u64,
    key: ChunkKey,
    bytes: Vec<u8>,
) -> Result<(), WorkerError> {
    check_epoch(state, epoch)?;
    let manifest = manifest(state)?;
    let mismatch = |reason: String| WorkerError::HashMismatch { reason };
    if key.file == 0 {
        let start = u64::from(key.index) * manifest.chunk_size;
        let expected = manifest
            .chunk_size
            .min(manifest.tokenizer.size.saturating_sub(start));
        if bytes.len() as u64 != expected {
            return Err(mismatch(format!(
                "tokenizer chunk {}: expected {expected} bytes, found {}",
                key.index,
                bytes.len()
            )));
        }
    } else {
        manifest
            .verify_chunk(key.file as usize - 1, key.index as usize, &bytes)
            .map_err(|e| mismatch(e.to_string()))?;
    }
    state.chunks.insert(key, bytes);
    if let LoadState::Loading { chunks_done, .. } = &mut state.load_state {
        *chunks_done += 1;
    }
    Ok(())
}

/// The bytes of one file of `size` bytes (the manifest's), from its stored
/// chunks. The buffer is allocated once at its final size: grown by
/// doubling, a stage's buffer would reserve up to twice its size, and the
/// heap peak while it grows would be three times.
fn assemble(state: &State, file: u32, size: u64) -> Vec<u8> {
    let mut out = Vec::new();
    // The size is the manifest's: when it cannot be reserved, the chunks
    // (which are what is stored) are appended as they come instead of
    // trapping here.
    let _ = out.try_reserve_exact(usize::try_from(size).unwrap_or(usize::MAX));
    let range = ChunkKey { file, index: 0 }..=ChunkKey {
        file,
        index: u32::MAX,
    };
    for entry in state.chunks.range(range) {
        out.extend_from_slice(&entry.value());
    }
    out
}

/// A load of the stages in progress (heap only: it spans several messages).
pub struct Build {
    pub epoch: u64,
    assignment: Assignment,
    manifest: Rc<Manifest>,
    /// Stages loaded so far.
    done: Vec<LlamaStage>,
    /// The stage being loaded.
    current: Option<LlamaLoader>,
}

/// Prepares loading the stored assignment (after a pull, or after an
/// upgrade). Nothing heavy runs here.
pub fn start_build(state: &mut State) -> Result<u64, WorkerError> {
    let manifest = manifest(state)?;
    let assignment = state.assignment().cloned().ok_or(WorkerError::NotLoaded)?;
    let total = all_chunks(&assignment, &manifest).len() as u32;
    let stored = state.chunks.len() as u32;
    if stored != total {
        return Err(WorkerError::InvalidAssignment {
            reason: format!("{stored} of the assignment's {total} chunks are stored"),
        });
    }
    let bytes = assignment
        .stages
        .iter()
        .map(|&s| manifest.stages[s as usize].size)
        .sum::<u64>()
        + if assignment.is_driver() {
            manifest.tokenizer.size
        } else {
            0
        };
    // The load messages add their instructions to this as they run.
    state.load_report = LoadReport {
        stages: assignment.stages.clone(),
        bytes,
        chunks: total,
        load_instructions: 0,
        load_messages: 0,
        load_max_message: 0,
    };
    state.runtime = None;
    state.load_state = LoadState::Loading {
        chunks_done: total,
        chunks_total: total,
    };
    state.build = Some(Build {
        epoch: state.load_epoch,
        assignment,
        manifest,
        done: Vec::new(),
        current: None,
    });
    Ok(state.load_epoch)
}

/// One phase of the build: parses the next stage, or advances the stage
/// being loaded; after the last, the tokenizer and the runtime. `true`
/// once the worker is ready.
pub fn build_step(state: &mut State, epoch: u64) -> Result<bool, WorkerError> {
    check_epoch(state, epoch)?;
    let mut build = state.build.take().ok_or(WorkerError::NotLoaded)?;
    let engine = super::runtime::engine_error;
    match build.current.as_mut() {
        None => {
            let index = build.assignment.stages[build.done.len()] as usize;
            let meta = build
                .manifest
                .stage(index)
                .map_err(|e| WorkerError::InvalidAssignment {
                    reason: e.to_string(),
                })?;
            let bytes = assemble(state, index as u32 + 1, meta.size);
            // A q8 stage keeps these bytes as its weights (no copy); an
            // ONNX stage has its weights read and the bytes freed here.
            let loader = LlamaLoader::new(meta, &build.manifest.config, bytes);
            build.current = Some(loader.map_err(engine)?);
        }
        Some(loader) => {
            if loader.advance().map_err(engine)? {
                let loader = build.current.take().ok_or(WorkerError::NotLoaded)?;
                build.done.push(loader.into_stage().map_err(engine)?);
            }
        }
    }
    if build.done.len() < build.assignment.stages.len() {
        state.build = Some(build);
        return Ok(false);
    }
    let tokenizer = if build.assignment.is_driver() {
        let bytes = assemble(state, 0, build.manifest.tokenizer.size);
        build
            .manifest
            .verify_tokenizer(&bytes)
            .map_err(|e| WorkerError::HashMismatch {
                reason: e.to_string(),
            })?;
        Some(Tokenizer::new(&build.manifest, &bytes).map_err(engine)?)
    } else {
        None
    };
    state.runtime = Some(Runtime::new(
        build.assignment,
        (*build.manifest).clone(),
        build.done,
        tokenizer,
    ));
    state.load_state = LoadState::Ready;
    Ok(true)
}

/// Adds one load message's instructions to the record.
pub fn count_build_message(state: &mut State, instructions: u64) {
    let r = &mut state.load_report;
    r.load_messages += 1;
    r.load_instructions += instructions;
    r.load_max_message = r.load_max_message.max(instructions);
}

/// Records a failed load.
pub fn fail(state: &mut State, epoch: u64, error: &WorkerError) {
    if state.load_epoch == epoch {
        state.runtime = None;
        state.build = None;
        state.load_state = LoadState::Failed {
            reason: error.to_string(),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candid::Principal;
    use ic_stable_structures::DefaultMemoryImpl;
    use serde_bytes::ByteBuf;

    fn read(name: &str) -> Vec<u8> {
        std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../../models/tiny-llama/stages-2")
                .join(name),
        )
        .unwrap()
    }

    fn source(r: &ChunkRef) -> Vec<u8> {
        let manifest = Manifest::from_json(&read("manifest.json")).unwrap();
        match r.file {
            ModelFile::Tokenizer => {
                let t = read("tokenizer.json");
                let cs = manifest.chunk_size as usize;
                t[r.index as usize * cs..((r.index as usize + 1) * cs).min(t.len())].to_vec()
            }
            ModelFile::Stage(s) => {
                let meta = &manifest.stages[s as usize];
                let c = &meta.chunks[r.index as usize];
                read(&meta.file)[c.offset as usize..(c.offset + c.size) as usize].to_vec()
            }
        }
    }

    #[test]
    fn pulls_checks_and_loads_then_reloads_and_refuses_bad_bytes() {
        let me = Principal::from_slice(&[1, 1]);
        let peer = Principal::from_slice(&[2, 2]);
        let mut state = State::open(DefaultMemoryImpl::default(), Principal::from_slice(&[9]));
        let args = LoadStagesArgs {
            model: "tiny-llama".into(),
            manifest_json: ByteBuf::from(read("manifest.json")),
            stages: vec![0],
            pipeline: vec![me, peer],
        };
        let LoadStart::Pull { epoch, chunks } = begin(&mut state, args.clone(), me, 0).unwrap()
        else {
            panic!("expected a pull")
        };
        // Tokenizer and stage 0: one chunk each in the tiny model.
        assert_eq!(chunks.len(), 2);
        assert_eq!(
            begin(&mut state, args.clone(), me, 0).unwrap_err(),
            WorkerError::Busy
        );
        let (key, r) = &chunks[1];
        let mut bad = source(r);
        bad[10] ^= 1;
        assert!(matches!(
            store_chunk(&mut state, epoch, *key, bad),
            Err(WorkerError::HashMismatch { .. })
        ));
        assert!(state.chunks.is_empty(), "a bad chunk is not stored");
        for (key, r) in &chunks {
            store_chunk(&mut state, epoch, *key, source(r)).unwrap();
        }
        let epoch = start_build(&mut state).unwrap();
        let mut messages = 0;
        while !build_step(&mut state, epoch).unwrap() {
            messages += 1;
        }
        // Read the weights, then convert them; that last message also
        // builds the runtime.
        assert_eq!(messages, 1);
        let stage = &state.runtime.as_ref().unwrap().stages[0];
        assert_eq!(stage.format(), engine::llama::WeightFormat::F32);
        assert_eq!(state.load_report.stages, vec![0]);
        assert_eq!(state.load_state, LoadState::Ready);
        assert!(state.runtime.as_ref().unwrap().tokenizer.is_some());
        // The same assignment again: nothing to do but say it is ready.
        assert!(state.outbox.is_empty());
        assert_eq!(begin(&mut state, args, me, 0).unwrap(), LoadStart::Done);
        assert!(state.outbox.contains(crate::model::outbox::ReportKey::Load));
        // After an upgrade the heap is gone; the chunks are not.
        state.runtime = None;
        let epoch = start_build(&mut state).unwrap();
        while !build_step(&mut state, epoch).unwrap() {}
        assert!(state.runtime.is_some());
        // A newer assignment stops an older build.
        let epoch = start_build(&mut state).unwrap();
        state.load_epoch += 1;
        assert!(matches!(
            build_step(&mut state, epoch),
            Err(WorkerError::InvalidAssignment { .. })
        ));
    }
}
