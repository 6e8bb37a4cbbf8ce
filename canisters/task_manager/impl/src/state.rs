//! The canister's state: stable structures only (it survives upgrades as
//! is), opened over the memories of [`crate::memory`].

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use candid::{CandidType, Decode, Deserialize, Encode, Principal};
use ic_stable_structures::storable::Bound;
use ic_stable_structures::{Cell as StableCell, DefaultMemoryImpl, StableBTreeMap, Storable};
use task_manager_api::{Config, Quota};

use crate::memory::{self, Memories, Memory};
use crate::model::jobs::{JobMeta, JobRecord, PipelineRecord, WorkerRecord};
use crate::model::rate_limit::TokenBucket;
use crate::model::registry::{ChunkKey, ModelRecord};

/// The default quota of a new installation: 2,000 tokens, refilling at 2
/// per second (a full bucket every ~17 minutes).
pub const DEFAULT_QUOTA: Quota = Quota {
    capacity: 2_000,
    refill_per_sec: 2,
};

/// A registered user.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct UserRecord {
    pub registered_at_ns: u64,
    pub banned: bool,
    /// A controller's override of the default quota.
    pub quota: Option<Quota>,
    pub bucket: TokenBucket,
}

/// Stored layouts carry a version: a later layout adds a variant and
/// converts on read.
#[derive(CandidType, Deserialize, Clone, Debug)]
enum StoredUser {
    V1(UserRecord),
}

#[derive(CandidType, Deserialize, Clone, Debug)]
enum StoredConfig {
    V1(Config),
}

#[derive(CandidType, Deserialize, Clone, Debug)]
enum StoredModel {
    V1(ModelRecord),
}

/// Counters that must never go back, even across upgrades.
#[derive(CandidType, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct Meta {
    pub next_model_id: u32,
}

#[derive(CandidType, Deserialize, Clone, Debug)]
enum StoredMeta {
    V1(Meta),
}

fn encode<T: CandidType>(value: &T) -> Vec<u8> {
    // Encoding a plain record cannot fail.
    Encode!(value).expect("candid encoding of stored state")
}

fn decode<T: CandidType + for<'de> Deserialize<'de>>(bytes: &[u8]) -> T {
    // Only this canister writes these bytes; undecodable ones mean corrupted
    // stable memory, where trapping is right.
    Decode!(bytes, T).expect("decoding stored state")
}

/// A stored type and its versioned layout: reads convert any older
/// variant to the current type.
trait Versioned: Clone {
    type Stored: CandidType + for<'de> Deserialize<'de>;
    fn into_stored(self) -> Self::Stored;
    fn from_stored(stored: Self::Stored) -> Self;
}

macro_rules! storable_via_versioned {
    ($($ty:ty),*) => {$(
        impl Storable for $ty {
            fn to_bytes(&self) -> Cow<'_, [u8]> {
                Cow::Owned(self.clone().into_bytes())
            }

            fn into_bytes(self) -> Vec<u8> {
                encode(&self.into_stored())
            }

            fn from_bytes(bytes: Cow<'_, [u8]>) -> Self {
                <$ty>::from_stored(decode(&bytes))
            }

            const BOUND: Bound = Bound::Unbounded;
        }
    )*};
}

impl Versioned for UserRecord {
    type Stored = StoredUser;
    fn into_stored(self) -> StoredUser {
        StoredUser::V1(self)
    }
    fn from_stored(stored: StoredUser) -> Self {
        match stored {
            StoredUser::V1(record) => record,
        }
    }
}

impl Versioned for ModelRecord {
    type Stored = StoredModel;
    fn into_stored(self) -> StoredModel {
        StoredModel::V1(self)
    }
    fn from_stored(stored: StoredModel) -> Self {
        match stored {
            StoredModel::V1(record) => record,
        }
    }
}

impl Versioned for Meta {
    type Stored = StoredMeta;
    fn into_stored(self) -> StoredMeta {
        StoredMeta::V1(self)
    }
    fn from_stored(stored: StoredMeta) -> Self {
        match stored {
            StoredMeta::V1(meta) => meta,
        }
    }
}

/// The stored form of [`Config`] (a type of the api crate).
#[derive(Clone, Debug)]
pub struct ConfigCell(pub Config);

impl Versioned for ConfigCell {
    type Stored = StoredConfig;
    fn into_stored(self) -> StoredConfig {
        StoredConfig::V1(self.0)
    }
    fn from_stored(stored: StoredConfig) -> Self {
        match stored {
            StoredConfig::V1(config) => ConfigCell(config),
        }
    }
}

macro_rules! versioned_v1 {
    ($($ty:ty => $stored:ident),*) => {$(
        #[derive(CandidType, Deserialize, Clone, Debug)]
        pub enum $stored {
            V1($ty),
        }

        impl Versioned for $ty {
            type Stored = $stored;
            fn into_stored(self) -> $stored {
                $stored::V1(self)
            }
            fn from_stored(stored: $stored) -> Self {
                match stored {
                    $stored::V1(record) => record,
                }
            }
        }
    )*};
}

versioned_v1!(
    WorkerRecord => StoredWorker,
    PipelineRecord => StoredPipeline,
    JobRecord => StoredJob,
    JobMeta => StoredJobMeta
);

storable_via_versioned!(
    UserRecord,
    ModelRecord,
    Meta,
    ConfigCell,
    WorkerRecord,
    PipelineRecord,
    JobRecord,
    JobMeta
);

pub struct State {
    pub config: StableCell<ConfigCell, Memory>,
    pub users: StableBTreeMap<Principal, UserRecord, Memory>,
    pub models: StableBTreeMap<String, ModelRecord, Memory>,
    pub chunks: StableBTreeMap<ChunkKey, Vec<u8>, Memory>,
    pub meta: StableCell<Meta, Memory>,
    pub workers: StableBTreeMap<Principal, WorkerRecord, Memory>,
    pub pipelines: StableBTreeMap<u32, PipelineRecord, Memory>,
    pub jobs: StableBTreeMap<u64, JobRecord, Memory>,
    /// Queued job ids (the value is unused).
    pub queue: StableBTreeMap<u64, u8, Memory>,
    pub job_meta: StableCell<JobMeta, Memory>,
    /// The worker module, in the pieces it was uploaded in.
    pub worker_wasm: StableBTreeMap<u32, Vec<u8>, Memory>,
    /// Derived, in heap only: manifests parsed once, by model id.
    pub parsed_manifests: RefCell<BTreeMap<u32, Rc<model_format::Manifest>>>,
    /// In heap only: when each user last had a job started (a sequence
    /// number), for the fair queue. An upgrade resets it, which only
    /// resets the turns.
    pub last_served: BTreeMap<Principal, u64>,
    served_seq: u64,
}

impl State {
    /// Opens the state in `memories`: fresh on install, as it was after an
    /// upgrade.
    pub fn open(memories: &Memories) -> State {
        State {
            config: StableCell::init(
                memories.get(memory::CONFIG),
                ConfigCell(Config {
                    default_quota: DEFAULT_QUOTA,
                    paused: false,
                }),
            ),
            users: StableBTreeMap::init(memories.get(memory::USERS)),
            models: StableBTreeMap::init(memories.get(memory::MODELS)),
            chunks: StableBTreeMap::init(memories.get(memory::CHUNKS)),
            meta: StableCell::init(memories.get(memory::META), Meta::default()),
            workers: StableBTreeMap::init(memories.get(memory::WORKERS)),
            pipelines: StableBTreeMap::init(memories.get(memory::PIPELINES)),
            jobs: StableBTreeMap::init(memories.get(memory::JOBS)),
            queue: StableBTreeMap::init(memories.get(memory::QUEUE)),
            job_meta: StableCell::init(memories.get(memory::JOB_META), JobMeta::default()),
            worker_wasm: StableBTreeMap::init(memories.get(memory::WORKER_WASM)),
            parsed_manifests: RefCell::new(BTreeMap::new()),
            last_served: BTreeMap::new(),
            served_seq: 0,
        }
    }

    /// Records that `user` just had a job started.
    pub fn mark_served(&mut self, user: Principal) {
        self.served_seq += 1;
        self.last_served.insert(user, self.served_seq);
    }

    /// A fresh state in its own in-heap memory (tests).
    pub fn in_memory() -> State {
        State::open(&Memories::new(DefaultMemoryImpl::default()))
    }

    pub fn config(&self) -> &Config {
        &self.config.get().0
    }

    /// A fresh model id.
    pub fn next_model_id(&mut self) -> u32 {
        let mut meta = self.meta.get().clone();
        let id = meta.next_model_id;
        meta.next_model_id += 1;
        self.meta.set(meta);
        id
    }

    pub fn update_config(&mut self, change: impl FnOnce(&mut Config)) {
        let mut config = self.config.get().0.clone();
        change(&mut config);
        self.config.set(ConfigCell(config));
    }
}

thread_local! {
    static STATE: RefCell<Option<State>> = const { RefCell::new(None) };
}

/// Opens the canister's state over its stable memory (init, post_upgrade).
pub fn init_state() {
    let state = State::open(&Memories::new(DefaultMemoryImpl::default()));
    STATE.with_borrow_mut(|s| *s = Some(state));
}

pub fn read_state<R>(f: impl FnOnce(&State) -> R) -> R {
    STATE.with_borrow(|s| f(s.as_ref().expect("state opened in init / post_upgrade")))
}

pub fn mutate_state<R>(f: impl FnOnce(&mut State) -> R) -> R {
    STATE.with_borrow_mut(|s| f(s.as_mut().expect("state opened in init / post_upgrade")))
}
