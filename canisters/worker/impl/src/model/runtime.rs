//! The stages a worker holds, loaded into tract (derived state: rebuilt
//! from the chunks in stable memory after an upgrade), and the KV caches of
//! jobs passing through them.

use std::collections::BTreeMap;

use engine::{Stage, StageInput, StageKv, StageOutput, Tokenizer};
use model_format::Manifest;
use worker_api::{StageData, WorkerError};

use super::assignment::Assignment;

pub fn engine_error(e: engine::Error) -> WorkerError {
    WorkerError::Engine {
        reason: e.to_string(),
    }
}

/// Loaded stages, ready to run.
pub struct Runtime {
    pub assignment: Assignment,
    pub manifest: Manifest,
    pub stages: Vec<Stage>,
    /// The driver's tokenizer (stage 0 only).
    pub tokenizer: Option<Tokenizer>,
    /// KV caches of the jobs this worker runs as a downstream peer.
    pub peer_jobs: BTreeMap<u64, Vec<StageKv>>,
}

impl Runtime {
    /// Stages loaded already (the canister loads them a phase per message,
    /// see [`super::load`]).
    pub fn new(
        assignment: Assignment,
        manifest: Manifest,
        stages: Vec<Stage>,
        tokenizer: Option<Tokenizer>,
    ) -> Runtime {
        Runtime {
            assignment,
            manifest,
            stages,
            tokenizer,
            peer_jobs: BTreeMap::new(),
        }
    }

    /// Empty caches for one sequence through this worker's stages.
    pub fn new_kv(&self) -> Vec<StageKv> {
        self.stages.iter().map(Stage::new_kv).collect()
    }

    /// Runs `input` through every stage held here, in order. On error the
    /// caches are left as they were.
    pub fn run(
        &self,
        kv: &mut Vec<StageKv>,
        input: StageInput,
    ) -> Result<StageOutput, WorkerError> {
        let start = input.start_position;
        let mut next = kv.clone();
        let mut input = input;
        let mut output = None;
        for (stage, cache) in self.stages.iter().zip(next.iter_mut()) {
            let out = stage.run(cache, input.clone()).map_err(engine_error)?;
            if let StageOutput::Hidden(h) = &out {
                input = StageInput::hidden(h.clone(), start);
            }
            output = Some(out);
        }
        *kv = next;
        output.ok_or(WorkerError::NotLoaded)
    }

    /// A downstream peer's step: `data` (hidden states) at `start_position`
    /// for `job`, whose caches are created at position 0.
    pub fn forward(
        &mut self,
        job: u64,
        start_position: u32,
        data: StageData,
    ) -> Result<StageData, WorkerError> {
        let StageData::Hidden {
            seq_len,
            hidden_size,
            values,
        } = data
        else {
            return Err(WorkerError::InvalidRequest {
                reason: "forward takes hidden states, found logits".into(),
            });
        };
        let mut kv = match self.peer_jobs.get(&job) {
            Some(kv) => kv.clone(),
            None if start_position == 0 => self.new_kv(),
            None => return Err(WorkerError::UnknownJob { job }),
        };
        let held = kv.first().map(StageKv::positions).unwrap_or(0);
        if held != start_position as usize {
            return Err(WorkerError::InvalidRequest {
                reason: format!(
                    "job {job}: the caches hold {held} positions, the step starts at {start_position}"
                ),
            });
        }
        let hidden = engine::HiddenStates {
            seq_len: seq_len as usize,
            hidden_size: hidden_size as usize,
            values,
        };
        let out = self.run(&mut kv, StageInput::hidden(hidden, start_position as usize))?;
        self.peer_jobs.insert(job, kv);
        Ok(to_data(out))
    }
}

/// A stage output as candid data.
pub fn to_data(out: StageOutput) -> StageData {
    match out {
        StageOutput::Hidden(h) => StageData::Hidden {
            seq_len: h.seq_len as u32,
            hidden_size: h.hidden_size as u32,
            values: h.values,
        },
        StageOutput::Logits(l) => StageData::Logits { values: l.last },
    }
}
