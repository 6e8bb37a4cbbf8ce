//! The canister suite in a [`LocalReplica`]: what the main command, the
//! integration tests and the benchmark do with it.
//!
//! [`Suite::install`] creates and installs the task manager;
//! [`Suite::add_workers`] creates worker canisters serving it;
//! [`Suite::upload_model`] registers a model directory and uploads every
//! chunk (resuming from what the registry already holds);
//! [`Suite::deploy`] places it on the workers and runs until they have
//! loaded their stages; [`Suite::generate`] and [`Suite::job`] are what a
//! user does.
//!
//! The same operations on any network go through a [`Transport`]
//! ([`transport`]): [`TaskManager`] is the typed client of the task
//! manager, [`upload`] the parallel, resumable uploader. `Suite` uses them
//! with a [`LocalTransport`]; the command line with an `ic-agent` one.
//!
//! ```no_run
//! # fn main() -> Result<(), suite::SuiteError> {
//! use suite::{Suite, Wasms};
//! let wasms = Wasms::read("target/canisters".as_ref())?;
//! let mut s = Suite::install(local_replica::LocalReplica::new()?, wasms, Default::default())?;
//! s.add_workers(1)?;
//! s.upload_model("models/tiny-llama/stages-1".as_ref(), &mut |_| {})?;
//! s.deploy("tiny-llama", 1)?;
//! # Ok(()) }
//! ```

pub mod shipped;
pub mod task_manager;
pub mod transport;
pub mod upload;

pub use task_manager::TaskManager;
pub use transport::{CallError, CallErrorKind, LocalTransport, Transport};
pub use upload::{UploadOptions, UploadReport};

use std::path::Path;

use candid::{encode_one, CandidType, Deserialize, Principal};
use local_replica::{CanisterInstallMode, LocalReplica};
use model_format::Manifest;
use serde_bytes::ByteBuf;
use task_manager_api::deploy_model::DeployModelArgs;
use task_manager_api::job::JobArgs;
use task_manager_api::pipelines::PipelinesPage;
use task_manager_api::workers::WorkersPage;
use task_manager_api::{
    AdminError, ChunkRef, GenerateRequest, InitArgs, JobInfo, ModelFile, ModelInfo, PageArgs,
    PipelineInfo, UserError, UserProfile, WorkerInfo,
};

#[derive(Debug, thiserror::Error)]
pub enum SuiteError {
    #[error("replica: {0}")]
    Replica(#[from] local_replica::Error),
    #[error("task manager: {0:?}")]
    User(#[from] UserError),
    #[error("task manager: {0:?}")]
    Admin(#[from] AdminError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Model(String),
    /// A call got no reply.
    #[error("{method}: {source}")]
    Call { method: String, source: CallError },
    /// An argument did not encode or a reply did not decode.
    #[error("{method}: {reason}")]
    Candid { method: String, reason: String },
    /// Uploading a chunk failed (after retries, if it was transient).
    #[error("uploading chunk {chunk}: {source}")]
    Upload {
        chunk: String,
        source: Box<SuiteError>,
    },
    #[error("job {job} failed: {reason}")]
    JobFailed { job: u64, reason: String },
    #[error("timed out: {0}")]
    Timeout(String),
}

impl SuiteError {
    /// Whether the same call may succeed if made again.
    pub fn is_transient(&self) -> bool {
        match self {
            SuiteError::Call { source, .. } => source.is_transient(),
            SuiteError::Upload { source, .. } => source.is_transient(),
            _ => false,
        }
    }
}

pub type Result<T> = std::result::Result<T, SuiteError>;

/// The canisters' modules, as `scripts/build_canisters.sh` writes them.
#[derive(Clone)]
pub struct Wasms {
    pub task_manager: Vec<u8>,
    pub worker: Vec<u8>,
}

impl Wasms {
    /// Reads `task_manager.wasm` and `worker.wasm` from `dir`.
    pub fn read(dir: &Path) -> Result<Wasms> {
        let read = |name: &str| {
            let path = dir.join(format!("{name}.wasm"));
            std::fs::read(&path).map_err(|source| SuiteError::Io {
                what: format!(
                    "reading {} (run scripts/build_canisters.sh)",
                    path.display()
                ),
                source,
            })
        };
        Ok(Wasms {
            task_manager: read("task_manager")?,
            worker: read("worker")?,
        })
    }
}

/// The controller of the canisters the suite installs.
pub fn controller() -> Principal {
    Principal::from_slice(&[0xc0, 0xde, 0x01])
}

/// A file of a model directory.
pub fn read_model_file(dir: &Path, name: &str) -> Result<Vec<u8>> {
    let path = dir.join(name);
    std::fs::read(&path).map_err(|source| SuiteError::Io {
        what: format!("reading {}", path.display()),
        source,
    })
}

/// Every chunk of a model directory with its bytes, in upload order
/// (tokenizer pieces, then each stage's chunks).
pub fn model_chunks(dir: &Path) -> Result<Vec<(ChunkRef, ByteBuf)>> {
    let manifest = Manifest::from_json(&read_model_file(dir, "manifest.json")?)
        .map_err(|e| SuiteError::Model(format!("{}: {e}", dir.display())))?;
    let chunk = |file, index| ChunkRef {
        model: manifest.name.clone(),
        file,
        index,
    };
    let mut out = Vec::new();
    let tokenizer = read_model_file(dir, &manifest.tokenizer.file)?;
    for (i, piece) in tokenizer.chunks(manifest.chunk_size as usize).enumerate() {
        out.push((chunk(ModelFile::Tokenizer, i as u32), ByteBuf::from(piece)));
    }
    for stage in &manifest.stages {
        let bytes = read_model_file(dir, &stage.file)?;
        for (i, c) in stage.chunks.iter().enumerate() {
            let piece = bytes
                .get(c.offset as usize..(c.offset + c.size) as usize)
                .ok_or_else(|| {
                    SuiteError::Model(format!("{} is shorter than its manifest says", stage.file))
                })?;
            out.push((
                chunk(ModelFile::Stage(stage.index as u32), i as u32),
                ByteBuf::from(piece),
            ));
        }
    }
    Ok(out)
}

/// Upload progress: chunks and bytes sent so far, of the total.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub chunks_done: u64,
    pub chunks_total: u64,
    pub bytes_done: u64,
    pub bytes_total: u64,
}

/// The task manager and its workers in a local replica.
pub struct Suite {
    pub ic: LocalReplica,
    pub task_manager: Principal,
    worker_wasm: Vec<u8>,
}

impl Suite {
    /// Creates the task manager (controlled by [`controller`]) and installs it.
    pub fn install(mut ic: LocalReplica, wasms: Wasms, args: InitArgs) -> Result<Suite> {
        let task_manager = ic.create_canister(controller())?;
        // Through the chunk store when the module is near the 2 MiB
        // message limit.
        ic.install_wasm(
            controller(),
            task_manager,
            CanisterInstallMode::Install,
            wasms.task_manager,
            encode_one(Some(args)).map_err(|e| SuiteError::Model(e.to_string()))?,
        )?;
        Ok(Suite {
            ic,
            task_manager,
            worker_wasm: wasms.worker,
        })
    }

    /// An update call to the task manager whose answer is a result with
    /// error `E` (a `variant { Ok; Err }` decodes as a Rust `Result`).
    pub fn update_as<E, A, R>(&mut self, sender: Principal, method: &str, arg: &A) -> Result<R>
    where
        E: CandidType + for<'de> Deserialize<'de> + Into<SuiteError>,
        A: CandidType,
        R: CandidType + for<'de> Deserialize<'de>,
    {
        let r: std::result::Result<R, E> =
            self.ic.update_one(self.task_manager, sender, method, arg)?;
        r.map_err(Into::into)
    }

    /// A query to the task manager whose answer is a result with error `E`.
    pub fn query_as<E, A, R>(&mut self, sender: Principal, method: &str, arg: &A) -> Result<R>
    where
        E: CandidType + for<'de> Deserialize<'de> + Into<SuiteError>,
        A: CandidType,
        R: CandidType + for<'de> Deserialize<'de>,
    {
        let r: std::result::Result<R, E> =
            self.ic.query_one(self.task_manager, sender, method, arg)?;
        r.map_err(Into::into)
    }

    /// A controller's update (its answer's error is an [`AdminError`]).
    pub fn admin<A: CandidType, R: CandidType + for<'de> Deserialize<'de>>(
        &mut self,
        method: &str,
        arg: &A,
    ) -> Result<R> {
        self.update_as::<AdminError, _, _>(controller(), method, arg)
    }

    /// A controller's query.
    pub fn admin_query<A: CandidType, R: CandidType + for<'de> Deserialize<'de>>(
        &mut self,
        method: &str,
        arg: &A,
    ) -> Result<R> {
        self.query_as::<AdminError, _, _>(controller(), method, arg)
    }

    /// A user's update (its answer's error is a [`UserError`]).
    pub fn update<A: CandidType, R: CandidType + for<'de> Deserialize<'de>>(
        &mut self,
        sender: Principal,
        method: &str,
        arg: &A,
    ) -> Result<R> {
        self.update_as::<UserError, _, _>(sender, method, arg)
    }

    /// A user's query.
    pub fn query<A: CandidType, R: CandidType + for<'de> Deserialize<'de>>(
        &mut self,
        sender: Principal,
        method: &str,
        arg: &A,
    ) -> Result<R> {
        self.query_as::<UserError, _, _>(sender, method, arg)
    }

    /// Creates `n` worker canisters (controlled by [`controller`]),
    /// installs the worker serving this task manager and adds them.
    pub fn add_workers(&mut self, n: usize) -> Result<Vec<Principal>> {
        let arg = encode_one(Some(worker_api::InitArgs {
            task_manager: self.task_manager,
        }))
        .map_err(|e| SuiteError::Model(e.to_string()))?;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let id = self.ic.create_canister(controller())?;
            self.ic.install_wasm(
                controller(),
                id,
                CanisterInstallMode::Install,
                self.worker_wasm.clone(),
                arg.clone(),
            )?;
            let _: WorkerInfo = self.admin("add_worker", &id)?;
            out.push(id);
        }
        Ok(out)
    }

    /// Registers the model of `dir` and uploads the chunks the registry
    /// does not hold yet, reporting progress after each
    /// ([`upload::upload_model`], one call at a time: the replica runs one
    /// message at a time anyway).
    pub fn upload_model(
        &mut self,
        dir: &Path,
        progress: &mut (dyn FnMut(Progress) + Send),
    ) -> Result<ModelInfo> {
        let transport = LocalTransport::new(&mut self.ic, controller());
        let tm = TaskManager::new(&transport, self.task_manager);
        let progress = std::sync::Mutex::new(progress);
        let options = UploadOptions {
            parallel: 1,
            ..Default::default()
        };
        let report = upload::upload_model(&tm, dir, &options, &|p| {
            (progress.lock().unwrap_or_else(|p| p.into_inner()))(p)
        })?;
        Ok(report.info)
    }

    /// Deploys `model` on `pipelines` pipelines and runs until the workers
    /// have loaded their stages (or failed to).
    pub fn deploy(&mut self, model: &str, pipelines: u32) -> Result<Vec<PipelineInfo>> {
        let _: Vec<PipelineInfo> = self.admin(
            "deploy_model",
            &DeployModelArgs {
                model: model.to_string(),
                pipelines,
            },
        )?;
        self.ic.run_until_idle()?;
        self.pipelines()
    }

    pub fn pipelines(&mut self) -> Result<Vec<PipelineInfo>> {
        let page: PipelinesPage = self.query(controller(), "pipelines", &PageArgs::FIRST)?;
        Ok(page.pipelines)
    }

    pub fn workers(&mut self) -> Result<Vec<WorkerInfo>> {
        let page: WorkersPage = self.admin_query("workers", &PageArgs::FIRST)?;
        Ok(page.workers)
    }

    pub fn register(&mut self, user: Principal) -> Result<UserProfile> {
        self.update(user, "register", &())
    }

    pub fn whoami(&mut self, user: Principal) -> Result<UserProfile> {
        self.query(user, "whoami", &())
    }

    pub fn generate(&mut self, user: Principal, request: &GenerateRequest) -> Result<u64> {
        self.update(user, "generate", request)
    }

    pub fn job(&mut self, user: Principal, job: u64) -> Result<JobInfo> {
        self.query(
            user,
            "job",
            &JobArgs {
                job,
                from_token: None,
            },
        )
    }

    /// The workers' states, traps and the costliest execution: what to
    /// print when a deployment or a job goes wrong.
    pub fn diagnosis(&mut self) -> String {
        let mut out = match self.workers() {
            Ok(w) => format!("workers: {w:#?}\n"),
            Err(e) => format!("workers: {e}\n"),
        };
        for e in self.ic.executions() {
            if let Some(trap) = &e.trap {
                out += &format!(
                    "trap in {} {}: {trap} ({} instructions)\n",
                    e.canister, e.method, e.instructions
                );
            }
        }
        if let Some(e) = self.ic.executions().iter().max_by_key(|e| e.instructions) {
            out += &format!(
                "most instructions: {} {} {:?}: {} in {:?}\n",
                e.canister, e.method, e.kind, e.instructions, e.wall
            );
        }
        out
    }
}
