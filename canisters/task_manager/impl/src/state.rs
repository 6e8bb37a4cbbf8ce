//! The canister's state: stable structures only (it survives upgrades as
//! is), opened over the memories of [`crate::memory`].

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use candid::{CandidType, Decode, Deserialize, Encode, Principal};
use ic_stable_structures::storable::Bound;
use ic_stable_structures::{Cell as StableCell, DefaultMemoryImpl, StableBTreeMap, Storable};
use task_manager_api::{Config, Quota, RegistrationPolicy};

use crate::memory::{self, Memories, Memory};
use crate::model::jobs::{JobMeta, JobRecord};
use crate::model::rate_limit::TokenBucket;
use crate::model::registry::{ChunkKey, ModelRecord};
use crate::model::workers::{PipelineRecord, WorkerRecord};
use crate::records::{ConfigRecord, QuotaRecord};

/// The default quota of a new installation: 10,000 tokens (prompt and
/// generated), refilling at 5 per second (a full bucket every ~33
/// minutes).
pub const DEFAULT_QUOTA: Quota = Quota {
    capacity: 10_000,
    refill_per_sec: 5,
};

/// The configuration of a new installation.
pub fn default_config() -> Config {
    Config {
        default_quota: DEFAULT_QUOTA,
        paused: false,
        registration: RegistrationPolicy::Open { max_users: 10_000 },
        new_user_tokens: 1_000,
        global_quota: None,
        max_jobs_per_user: 4,
        max_waiters_per_user: 2,
        wait_timeout_secs: 15 * 60,
        finished_job_retention_secs: 24 * 60 * 60,
        max_finished_jobs_per_user: 100,
        queue_timeout_secs: 10 * 60,
        job_stall_timeout_secs: DEFAULT_JOB_STALL_TIMEOUT_SECS,
    }
}

/// How long a running job's driver may stay silent: longer than its
/// slowest step, then the longest wait between two tries of a report, then
/// that report's own deadline (a report is late, not lost, until then).
pub const DEFAULT_JOB_STALL_TIMEOUT_SECS: u64 = 15 * 60;

const _: () = {
    use worker_api::protocol::{REPORT_MAX_RETRY_SECS, REPORT_TIMEOUT_SECS, STEP_TIMEOUT_SECS};
    assert!(
        DEFAULT_JOB_STALL_TIMEOUT_SECS
            > STEP_TIMEOUT_SECS as u64 + REPORT_MAX_RETRY_SECS + REPORT_TIMEOUT_SECS as u64
    );
};

/// A registered user.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct UserRecord {
    pub registered_at_ns: u64,
    pub banned: bool,
    /// A controller's override of the default quota.
    pub quota: Option<QuotaRecord>,
    pub bucket: TokenBucket,
    /// Jobs queued or running now (absent in older records: none).
    pub active_jobs: Option<u32>,
}

impl UserRecord {
    pub fn active_jobs(&self) -> u32 {
        self.active_jobs.unwrap_or(0)
    }
}

/// The bucket all reservations also draw from, when a controller set a
/// global quota.
#[derive(CandidType, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct GlobalBucket(pub Option<TokenBucket>);

/// A key of the per-user job index: the owner, then the job id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct UserJobKey {
    pub owner: Principal,
    pub job: u64,
}

impl Storable for UserJobKey {
    fn to_bytes(&self) -> Cow<'_, [u8]> {
        Cow::Owned(self.into_bytes())
    }

    fn into_bytes(self) -> Vec<u8> {
        // The principal's length first, so that a shorter principal's keys
        // never interleave with a longer one's that shares its prefix.
        let p = self.owner.as_slice();
        let mut bytes = Vec::with_capacity(1 + p.len() + 8);
        bytes.push(p.len() as u8);
        bytes.extend_from_slice(p);
        bytes.extend_from_slice(&self.job.to_be_bytes());
        bytes
    }

    fn from_bytes(bytes: Cow<'_, [u8]>) -> Self {
        let n = bytes[0] as usize;
        let owner = Principal::from_slice(&bytes[1..1 + n]);
        let mut job = [0u8; 8];
        job.copy_from_slice(&bytes[1 + n..9 + n]);
        UserJobKey {
            owner,
            job: u64::from_be_bytes(job),
        }
    }

    const BOUND: Bound = Bound::Bounded {
        max_size: 1 + 29 + 8,
        is_fixed_size: false,
    };
}

/// A key of the finished-jobs index: when the job ended, then its id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct FinishedKey {
    pub finished_at_ns: u64,
    pub job: u64,
}

impl Storable for FinishedKey {
    fn to_bytes(&self) -> Cow<'_, [u8]> {
        Cow::Owned(self.into_bytes())
    }

    fn into_bytes(self) -> Vec<u8> {
        let mut bytes = self.finished_at_ns.to_be_bytes().to_vec();
        bytes.extend_from_slice(&self.job.to_be_bytes());
        bytes
    }

    fn from_bytes(bytes: Cow<'_, [u8]>) -> Self {
        let mut a = [0u8; 8];
        let mut b = [0u8; 8];
        a.copy_from_slice(&bytes[..8]);
        b.copy_from_slice(&bytes[8..16]);
        FinishedKey {
            finished_at_ns: u64::from_be_bytes(a),
            job: u64::from_be_bytes(b),
        }
    }

    const BOUND: Bound = Bound::Bounded {
        max_size: 16,
        is_fixed_size: true,
    };
}

/// Stored layouts carry a version: a later layout adds a variant and
/// converts on read.
#[derive(CandidType, Deserialize, Clone, Debug)]
enum StoredUser {
    V1(UserRecord),
}

#[derive(CandidType, Deserialize, Clone, Debug)]
enum StoredConfig {
    V1(ConfigRecord),
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
        StoredConfig::V1(ConfigRecord::from(&self.0))
    }
    fn from_stored(stored: StoredConfig) -> Self {
        match stored {
            StoredConfig::V1(record) => ConfigCell(record.to_config(&default_config())),
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
    JobMeta => StoredJobMeta,
    GlobalBucket => StoredGlobalBucket
);

storable_via_versioned!(
    UserRecord,
    ModelRecord,
    Meta,
    ConfigCell,
    WorkerRecord,
    PipelineRecord,
    JobRecord,
    JobMeta,
    GlobalBucket
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
    /// Queued job ids (the value is unused), oldest first.
    pub queue: StableBTreeMap<u64, u8, Memory>,
    /// Running job ids (the value is unused): `post_upgrade` and the
    /// watchdog touch only these.
    pub running: StableBTreeMap<u64, u8, Memory>,
    /// Each user's jobs (value: 1 once finished), for `my_jobs` and the
    /// per-user limits.
    pub user_jobs: StableBTreeMap<UserJobKey, u8, Memory>,
    /// Finished jobs by when they ended, for their expiry.
    pub finished: StableBTreeMap<FinishedKey, u8, Memory>,
    pub global_bucket: StableCell<GlobalBucket, Memory>,
    /// Registration requests under `Approval`: when each was made.
    pub pending_users: StableBTreeMap<Principal, u64, Memory>,
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
    /// In heap only: `generate_and_wait` calls waiting now, per user.
    pub waiters: BTreeMap<Principal, u32>,
    /// In heap only: a health check is under way (they never overlap).
    pub health_check_running: bool,
}

impl State {
    /// Opens the state in `memories`: fresh on install, as it was after an
    /// upgrade.
    pub fn open(memories: &Memories) -> State {
        State {
            config: StableCell::init(memories.get(memory::CONFIG), ConfigCell(default_config())),
            users: StableBTreeMap::init(memories.get(memory::USERS)),
            models: StableBTreeMap::init(memories.get(memory::MODELS)),
            chunks: StableBTreeMap::init(memories.get(memory::CHUNKS)),
            meta: StableCell::init(memories.get(memory::META), Meta::default()),
            workers: StableBTreeMap::init(memories.get(memory::WORKERS)),
            pipelines: StableBTreeMap::init(memories.get(memory::PIPELINES)),
            jobs: StableBTreeMap::init(memories.get(memory::JOBS)),
            queue: StableBTreeMap::init(memories.get(memory::QUEUE)),
            running: StableBTreeMap::init(memories.get(memory::RUNNING)),
            user_jobs: StableBTreeMap::init(memories.get(memory::USER_JOBS)),
            finished: StableBTreeMap::init(memories.get(memory::FINISHED)),
            pending_users: StableBTreeMap::init(memories.get(memory::PENDING_USERS)),
            global_bucket: StableCell::init(
                memories.get(memory::GLOBAL_BUCKET),
                GlobalBucket(None),
            ),
            job_meta: StableCell::init(memories.get(memory::JOB_META), JobMeta::default()),
            worker_wasm: StableBTreeMap::init(memories.get(memory::WORKER_WASM)),
            parsed_manifests: RefCell::new(BTreeMap::new()),
            last_served: BTreeMap::new(),
            served_seq: 0,
            waiters: BTreeMap::new(),
            health_check_running: false,
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
