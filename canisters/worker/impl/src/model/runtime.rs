//! The stages a worker holds, loaded on the engine's own llama forward
//! pass ([`LlamaStage`], `f32` or 8-bit weights; derived state: rebuilt
//! from the chunks in stable memory after an upgrade), and the KV caches
//! ([`LlamaKv`]) of jobs passing through them. The worker never uses tract,
//! so its module does not contain it.
//!
//! Caches are updated in place: a step hands each stage its cache by
//! reference and the stage appends the step's keys and values to its
//! buffers. The driver reserves a job's caches once, for the prompt and
//! `max_new_tokens` (see `DriverJob::new`), so they never move; a
//! downstream peer, which does not know the job's length, lets them grow
//! as a `Vec` does. A step that fails may have advanced the caches of the
//! stages before the failing one: the job's caches are dropped then (the
//! job fails anyway).
//!
//! A downstream peer keeps the caches of each job passing through it until
//! `end_job`, or until no step has touched them for
//! [`PEER_CACHE_TTL_SECS`] (the `end_job` may never come: the driver
//! trapped, was upgraded, or the one-way call was lost).

use std::collections::BTreeMap;

use engine::llama::{LlamaKv, LlamaStage};
use engine::{StageInput, StageOutput, Tokenizer};
use model_format::{Manifest, ModelConfig};
use worker_api::forward::ForwardOutput;
use worker_api::protocol::{MAX_MESSAGE_INSTRUCTIONS, MAX_PEER_JOBS, PEER_CACHE_TTL_SECS};
use worker_api::{StageData, WorkerError};

use super::assignment::Assignment;

const NANOS_PER_SEC: u64 = 1_000_000_000;

pub fn engine_error(e: engine::Error) -> WorkerError {
    WorkerError::Engine {
        reason: e.to_string(),
    }
}

fn invalid(reason: String) -> WorkerError {
    WorkerError::InvalidRequest { reason }
}

/// The caches of a job this worker runs as a downstream peer.
pub struct PeerJob {
    pub kv: Vec<LlamaKv>,
    /// When a step last used them.
    pub touched_ns: u64,
}

/// Loaded stages, ready to run.
pub struct Runtime {
    pub assignment: Assignment,
    pub manifest: Manifest,
    pub stages: Vec<LlamaStage>,
    /// The driver's tokenizer (stage 0 only).
    pub tokenizer: Option<Tokenizer>,
    /// KV caches of the jobs this worker runs as a downstream peer.
    pub peer_jobs: BTreeMap<u64, PeerJob>,
}

/// Runs `input` through `stages` in order, each appending to its cache in
/// `kv`. On error the caches of the stages before the failing one have
/// advanced: drop them.
fn run_stages(
    stages: &[LlamaStage],
    kv: &mut [LlamaKv],
    input: StageInput,
) -> Result<StageOutput, WorkerError> {
    if kv.len() != stages.len() || stages.is_empty() {
        return Err(WorkerError::Engine {
            reason: format!("{} caches for {} stages held here", kv.len(), stages.len()),
        });
    }
    let start = input.start_position;
    let last = stages.len() - 1;
    let mut input = input;
    for (i, (stage, cache)) in stages.iter().zip(kv.iter_mut()).enumerate() {
        let out = stage.run(cache, input).map_err(engine_error)?;
        if i == last {
            return Ok(out);
        }
        input = match out {
            StageOutput::Hidden(h) => StageInput::hidden(h, start),
            StageOutput::Logits(_) => {
                return Err(WorkerError::Engine {
                    reason: format!("stage {i} of {} gave logits", stages.len()),
                })
            }
        };
    }
    Err(WorkerError::NotLoaded)
}

impl Runtime {
    /// Stages loaded already (the canister loads them a phase per message,
    /// see [`super::load`]).
    pub fn new(
        assignment: Assignment,
        manifest: Manifest,
        stages: Vec<LlamaStage>,
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
    pub fn new_kv(&self) -> Vec<LlamaKv> {
        self.stages.iter().map(LlamaStage::new_kv).collect()
    }

    /// Runs `input` through every stage held here, in order, updating
    /// `kv` in place (see [`run_stages`] for what an error leaves).
    pub fn run(&self, kv: &mut [LlamaKv], input: StageInput) -> Result<StageOutput, WorkerError> {
        run_stages(&self.stages, kv, input)
    }

    /// A downstream peer's step at time `now`: `data` (hidden states) at
    /// `start_position` for `job`, whose caches are created at position 0.
    /// Caches untouched for [`PEER_CACHE_TTL_SECS`] are dropped first; a
    /// step that fails drops the job's caches.
    pub fn forward(
        &mut self,
        job: u64,
        start_position: u32,
        data: StageData,
        now: u64,
    ) -> Result<StageData, WorkerError> {
        self.expire_peer_jobs(now);
        let hidden = check_forward_input(&self.manifest.config, start_position, data)?;
        if !self.peer_jobs.contains_key(&job) {
            if start_position != 0 {
                return Err(WorkerError::UnknownJob { job });
            }
            if self.peer_jobs.len() >= MAX_PEER_JOBS {
                return Err(WorkerError::TooManyJobs {
                    max: MAX_PEER_JOBS as u32,
                });
            }
            let kv = self.new_kv();
            self.peer_jobs.insert(
                job,
                PeerJob {
                    kv,
                    touched_ns: now,
                },
            );
        }
        let Runtime {
            stages, peer_jobs, ..
        } = self;
        let entry = peer_jobs
            .get_mut(&job)
            .ok_or(WorkerError::UnknownJob { job })?;
        let held = entry.kv.first().map(LlamaKv::positions).unwrap_or(0);
        if held != start_position as usize {
            return Err(invalid(format!(
                "job {job}: the caches hold {held} positions, the step starts at {start_position}"
            )));
        }
        entry.touched_ns = now;
        let input = StageInput::hidden(hidden, start_position as usize);
        match run_stages(stages, &mut entry.kv, input) {
            Ok(out) => Ok(to_data(out)),
            Err(e) => {
                peer_jobs.remove(&job);
                Err(e)
            }
        }
    }

    /// Drops the caches of jobs no step has touched for
    /// [`PEER_CACHE_TTL_SECS`]; how many.
    pub fn expire_peer_jobs(&mut self, now: u64) -> usize {
        let before = self.peer_jobs.len();
        let ttl = PEER_CACHE_TTL_SECS * NANOS_PER_SEC;
        self.peer_jobs
            .retain(|_, j| now.saturating_sub(j.touched_ns) < ttl);
        before - self.peer_jobs.len()
    }

    /// When the next peer caches expire, if any are held.
    pub fn next_peer_expiry(&self) -> Option<u64> {
        let ttl = PEER_CACHE_TTL_SECS * NANOS_PER_SEC;
        self.peer_jobs
            .values()
            .map(|j| j.touched_ns.saturating_add(ttl))
            .min()
    }
}

/// Checks what a `forward` brings against the model before anything runs:
/// hidden states of at least one position, `hidden_size` wide, within the
/// context.
pub fn check_forward_input(
    config: &ModelConfig,
    start_position: u32,
    data: StageData,
) -> Result<engine::HiddenStates, WorkerError> {
    let StageData::Hidden {
        seq_len,
        hidden_size,
        values,
    } = data
    else {
        return Err(invalid("forward takes hidden states, found logits".into()));
    };
    let (seq_len, hidden_size) = (seq_len as usize, hidden_size as usize);
    if seq_len == 0 || hidden_size != config.hidden_size || values.len() != seq_len * hidden_size {
        return Err(invalid(format!(
            "expected hidden states of seq_len >= 1 × hidden_size {}, found seq_len {seq_len} × hidden_size {hidden_size} with {} values",
            config.hidden_size,
            values.len()
        )));
    }
    let end = start_position as usize + seq_len;
    if end > config.max_position_embeddings {
        return Err(invalid(format!(
            "positions up to {end} are beyond the context of {}",
            config.max_position_embeddings
        )));
    }
    Ok(engine::HiddenStates {
        seq_len,
        hidden_size,
        values,
    })
}

/// Checks a peer's answer to a step of `seq_len` positions before the
/// driver uses it: hidden states `seq_len × hidden_size` from a peer that
/// does not hold the last stage, the logits of the last position
/// (`vocab_size` values) from the one that does, and an instruction count
/// that one message can have used.
pub fn check_peer_output(
    config: &ModelConfig,
    seq_len: usize,
    holds_last_stage: bool,
    out: &ForwardOutput,
) -> Result<(), String> {
    if out.instructions > MAX_MESSAGE_INSTRUCTIONS {
        return Err(format!(
            "it reports {} instructions for one message, above the limit of {MAX_MESSAGE_INSTRUCTIONS}",
            out.instructions
        ));
    }
    match (&out.data, holds_last_stage) {
        (StageData::Logits { values }, true) => {
            if values.len() != config.vocab_size {
                return Err(format!(
                    "expected {} logits, found {}",
                    config.vocab_size,
                    values.len()
                ));
            }
        }
        (
            StageData::Hidden {
                seq_len: n,
                hidden_size,
                values,
            },
            false,
        ) => {
            let (n, hidden_size) = (*n as usize, *hidden_size as usize);
            if n != seq_len || hidden_size != config.hidden_size || values.len() != n * hidden_size
            {
                return Err(format!(
                    "expected hidden states of {seq_len} × {}, found {n} × {hidden_size} with {} values",
                    config.hidden_size,
                    values.len()
                ));
            }
        }
        (StageData::Hidden { .. }, true) => {
            return Err("expected logits from the last stage, found hidden states".into())
        }
        (StageData::Logits { .. }, false) => {
            return Err("expected hidden states, found logits before the last stage".into())
        }
    }
    Ok(())
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
