//! The worker's state: the assignment and its verified chunks in stable
//! memory (they survive upgrades), and, in heap, what is derived from them
//! (the stages loaded on the engine's pass), the jobs running now, the reports owed
//! to the task manager (kept in stable memory across an upgrade) and
//! cancels that came before their job.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use candid::{CandidType, Decode, Deserialize, Encode, Principal};
use ic_stable_structures::storable::Bound;
use ic_stable_structures::{Cell as StableCell, DefaultMemoryImpl, StableBTreeMap, Storable};
use model_format::Manifest;
use task_manager_api::job_finished::{JobEnd, JobFinishedArgs};
use task_manager_api::worker_ready::WorkerReadyArgs;
use worker_api::status::LoadState;
use worker_api::WorkerError;

use crate::memory::{self, Memory};
use crate::model::assignment::Assignment;
use crate::model::cancels::EarlyCancels;
use crate::model::job::DriverJob;
use crate::model::load::{Build, LoadReport};
use crate::model::outbox::{Outbox, Pending, ReportKey, StoredOutbox};
use crate::model::runtime::Runtime;

/// Stored layouts carry a version.
#[derive(CandidType, Deserialize, Clone, Debug)]
enum StoredConfig {
    V1 { task_manager: Principal },
}

#[derive(CandidType, Deserialize, Clone, Debug)]
enum StoredAssignment {
    V1(Option<Assignment>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigCell {
    pub task_manager: Principal,
}

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct AssignmentCell(pub Option<Assignment>);

fn encode<T: CandidType>(value: &T) -> Vec<u8> {
    Encode!(value).expect("candid encoding of stored state")
}

fn decode<T: CandidType + for<'de> Deserialize<'de>>(bytes: &[u8]) -> T {
    // Only this canister writes these bytes: undecodable ones mean
    // corrupted stable memory, where trapping is right.
    Decode!(bytes, T).expect("decoding stored state")
}

impl Storable for ConfigCell {
    fn to_bytes(&self) -> Cow<'_, [u8]> {
        Cow::Owned(encode(&StoredConfig::V1 {
            task_manager: self.task_manager,
        }))
    }
    fn into_bytes(self) -> Vec<u8> {
        self.to_bytes().into_owned()
    }
    fn from_bytes(bytes: Cow<'_, [u8]>) -> Self {
        match decode(&bytes) {
            StoredConfig::V1 { task_manager } => ConfigCell { task_manager },
        }
    }
    const BOUND: Bound = Bound::Unbounded;
}

impl Storable for AssignmentCell {
    fn to_bytes(&self) -> Cow<'_, [u8]> {
        Cow::Owned(encode(&StoredAssignment::V1(self.0.clone())))
    }
    fn into_bytes(self) -> Vec<u8> {
        encode(&StoredAssignment::V1(self.0))
    }
    fn from_bytes(bytes: Cow<'_, [u8]>) -> Self {
        match decode(&bytes) {
            StoredAssignment::V1(a) => AssignmentCell(a),
        }
    }
    const BOUND: Bound = Bound::Unbounded;
}

/// The outbox between `pre_upgrade` and `post_upgrade`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SavedOutbox(pub StoredOutbox);

impl Default for SavedOutbox {
    fn default() -> Self {
        SavedOutbox(StoredOutbox::V1 {
            entries: Vec::new(),
        })
    }
}

impl Storable for SavedOutbox {
    fn to_bytes(&self) -> Cow<'_, [u8]> {
        Cow::Owned(encode(&self.0))
    }
    fn into_bytes(self) -> Vec<u8> {
        encode(&self.0)
    }
    fn from_bytes(bytes: Cow<'_, [u8]>) -> Self {
        SavedOutbox(decode(&bytes))
    }
    const BOUND: Bound = Bound::Unbounded;
}

/// A file of the assignment: 0 the tokenizer, 1 + s stage s.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ChunkKey {
    pub file: u32,
    pub index: u32,
}

impl Storable for ChunkKey {
    fn to_bytes(&self) -> Cow<'_, [u8]> {
        Cow::Owned(self.into_bytes())
    }
    fn into_bytes(self) -> Vec<u8> {
        let mut out = self.file.to_be_bytes().to_vec();
        out.extend_from_slice(&self.index.to_be_bytes());
        out
    }
    fn from_bytes(bytes: Cow<'_, [u8]>) -> Self {
        let word =
            |i: usize| u32::from_be_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
        ChunkKey {
            file: word(0),
            index: word(4),
        }
    }
    const BOUND: Bound = Bound::Bounded {
        max_size: 8,
        is_fixed_size: true,
    };
}

pub struct State {
    pub config: StableCell<ConfigCell, Memory>,
    pub assignment: StableCell<AssignmentCell, Memory>,
    pub chunks: StableBTreeMap<ChunkKey, Vec<u8>, Memory>,
    /// Derived: the assignment's manifest, parsed.
    pub manifest: Option<Rc<Manifest>>,
    /// Derived: the assignment's stages, loaded.
    pub runtime: Option<Runtime>,
    pub load_state: LoadState,
    /// Bumped by every new assignment: a load that finds it changed after
    /// an await gives up.
    pub load_epoch: u64,
    /// A load of the stages in progress.
    pub build: Option<Build>,
    /// What the last completed load cost.
    pub load_report: LoadReport,
    /// Jobs this worker drives: accepted, not yet reported.
    pub jobs: BTreeMap<u64, DriverJob>,
    /// Numbers the runs of jobs (see [`DriverJob::run`]).
    pub next_run: u64,
    /// Reports owed to the task manager.
    pub outbox: Outbox,
    /// The outbox while the canister upgrades.
    pub saved_outbox: StableCell<SavedOutbox, Memory>,
    /// Cancels of jobs not (yet) accepted.
    pub early_cancels: EarlyCancels,
}

impl State {
    pub fn open(memory: DefaultMemoryImpl, task_manager: Principal) -> State {
        let manager = memory::manager(memory);
        State {
            config: StableCell::init(manager.get(memory::CONFIG), ConfigCell { task_manager }),
            assignment: StableCell::init(manager.get(memory::ASSIGNMENT), AssignmentCell(None)),
            chunks: StableBTreeMap::init(manager.get(memory::CHUNKS)),
            manifest: None,
            runtime: None,
            load_state: LoadState::Idle,
            load_epoch: 0,
            build: None,
            load_report: LoadReport::default(),
            jobs: BTreeMap::new(),
            next_run: 0,
            outbox: Outbox::default(),
            saved_outbox: StableCell::init(manager.get(memory::OUTBOX), SavedOutbox::default()),
            early_cancels: EarlyCancels::default(),
        }
    }

    pub fn task_manager(&self) -> Principal {
        self.config.get().task_manager
    }

    /// The assignment in force.
    pub fn assignment(&self) -> Option<&Assignment> {
        self.assignment.get().0.as_ref()
    }

    /// Owes the task manager the end of `job` (`job_finished`). A report
    /// dropped to make room is returned (to log).
    pub fn report_job_end(&mut self, job: u64, end: JobEnd, now: u64) -> Option<Pending> {
        let arg = encode(&JobFinishedArgs { job, end });
        self.outbox
            .enqueue(ReportKey::Job(job), "job_finished", arg, now)
    }

    /// Owes the task manager the end of the load of `epoch`
    /// (`worker_ready`), unless a newer assignment replaced it.
    pub fn report_load_end(
        &mut self,
        epoch: u64,
        error: Option<String>,
        now: u64,
    ) -> Option<Pending> {
        if epoch != self.load_epoch {
            return None;
        }
        let a = self.assignment();
        let args = WorkerReadyArgs {
            model: a.map(|a| a.model.clone()).unwrap_or_default(),
            stages: a.map(|a| a.stages.clone()).unwrap_or_default(),
            error,
        };
        self.outbox
            .enqueue(ReportKey::Load, "worker_ready", encode(&args), now)
    }

    /// Ends every running job as failed with `error` (reported); the
    /// reports dropped to make room.
    pub fn fail_running_jobs(&mut self, error: &WorkerError, now: u64) -> Vec<Pending> {
        let jobs = std::mem::take(&mut self.jobs);
        jobs.into_keys()
            .filter_map(|job| self.report_job_end(job, JobEnd::Failed(error.clone()), now))
            .collect()
    }

    /// Keeps the outbox in stable memory (`pre_upgrade`).
    pub fn save_outbox(&mut self) {
        self.saved_outbox.set(SavedOutbox(self.outbox.to_stored()));
    }

    /// Takes the outbox back from stable memory (`post_upgrade`), every
    /// report due at once.
    pub fn restore_outbox(&mut self, now: u64) {
        let saved = self.saved_outbox.get().clone();
        self.saved_outbox.set(SavedOutbox::default());
        self.outbox = Outbox::from_stored(saved.0);
        self.outbox.all_due(now);
    }
}

thread_local! {
    static STATE: RefCell<Option<State>> = const { RefCell::new(None) };
}

/// Opens the state over stable memory (init, post_upgrade). The task
/// manager is set on install and kept on upgrade unless given again.
pub fn init_state(task_manager: Option<Principal>) {
    let fallback = task_manager.unwrap_or(Principal::anonymous());
    let mut state = State::open(DefaultMemoryImpl::default(), fallback);
    if let Some(tm) = task_manager {
        state.config.set(ConfigCell { task_manager: tm });
    }
    STATE.with_borrow_mut(|s| *s = Some(state));
}

pub fn read_state<R>(f: impl FnOnce(&State) -> R) -> R {
    STATE.with_borrow(|s| f(s.as_ref().expect("state opened in init / post_upgrade")))
}

pub fn mutate_state<R>(f: impl FnOnce(&mut State) -> R) -> R {
    STATE.with_borrow_mut(|s| f(s.as_mut().expect("state opened in init / post_upgrade")))
}
