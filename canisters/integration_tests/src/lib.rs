//! Helpers for the canister integration tests: building the canisters'
//! wasm, a replica with them installed, and the bundled models' files.
//!
//! The tests (`tests/canisters/`, one binary) run the real wasm in
//! [`local_replica`]; they build the canisters themselves with
//! `scripts/build_canisters.sh` (a quick no-op when up to date).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use candid::{encode_one, CandidType, Deserialize, Principal};
use local_replica::{CanisterInstallMode, LocalReplica};
use model_format::Manifest;
use serde_bytes::ByteBuf;
use task_manager_api::create_model::CreateModelArgs;
use task_manager_api::deploy_model::DeployModelArgs;
use task_manager_api::upload_chunk::{UploadChunkArgs, UploadProgress};
use task_manager_api::{
    ChunkRef, Error as TmError, GenerateRequest, InitArgs, JobInfo, ModelFile, ModelInfo,
    PipelineInfo, Prompt, Sampling, UserProfile, WorkerInfo,
};

/// The canisters this repository ships.
pub const CANISTERS: [&str; 3] = ["task_manager", "worker", "example_caller"];

pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|p| {
            if p.is_relative() {
                workspace().join(p)
            } else {
                p
            }
        })
        .unwrap_or_else(|| workspace().join("target"))
}

/// The wasm of one of [`CANISTERS`] as it ships: built once per test run
/// by `scripts/build_canisters.sh` (canister profile, candid metadata).
pub fn wasm(name: &str) -> Vec<u8> {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    let dir = DIR.get_or_init(|| {
        let status = Command::new("bash")
            .arg(workspace().join("scripts/build_canisters.sh"))
            .current_dir(workspace())
            .env("CARGO_TARGET_DIR", target_dir())
            .status()
            .expect("running scripts/build_canisters.sh");
        assert!(status.success(), "scripts/build_canisters.sh failed");
        target_dir().join("canisters")
    });
    let path = dir.join(format!("{name}.wasm"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// A principal for tests: `n` distinguishes users.
pub fn principal(n: u8) -> Principal {
    Principal::from_slice(&[n, 0x17, 0x42, 0x01])
}

/// The controller of the canisters the tests install.
pub fn controller() -> Principal {
    Principal::from_slice(&[0xc0, 0xde, 0x01])
}

/// A replica with the task manager installed by [`controller`].
pub struct Env {
    pub ic: LocalReplica,
    pub task_manager: Principal,
}

/// Compiled modules are kept here between test processes.
fn replica_config() -> local_replica::Config {
    local_replica::Config {
        cache_dir: Some(target_dir().join("replica-cache")),
        ..Default::default()
    }
}

impl Env {
    pub fn new(args: InitArgs) -> Env {
        let mut ic = LocalReplica::with_config(replica_config()).expect("a replica");
        let task_manager = ic.create_canister(controller()).expect("create_canister");
        ic.install_canister(
            controller(),
            task_manager,
            wasm("task_manager"),
            encode_one(Some(args)).expect("candid"),
        )
        .expect("installing the task manager");
        Env { ic, task_manager }
    }
}

/// A file of a bundled model directory (`models/<dir>/<name>`).
pub fn model_file(dir: &str, name: &str) -> Vec<u8> {
    let path = workspace().join("models").join(dir).join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// Every chunk of a bundled model directory with its bytes, in upload
/// order (tokenizer pieces, then each stage's chunks).
pub fn model_chunks(dir: &str) -> Vec<(ChunkRef, ByteBuf)> {
    let manifest = Manifest::from_json(&model_file(dir, "manifest.json")).expect("manifest");
    let chunk = |file, index| ChunkRef {
        model: manifest.name.clone(),
        file,
        index,
    };
    let mut out = Vec::new();
    let tokenizer = model_file(dir, &manifest.tokenizer.file);
    for (i, piece) in tokenizer.chunks(manifest.chunk_size as usize).enumerate() {
        out.push((chunk(ModelFile::Tokenizer, i as u32), ByteBuf::from(piece)));
    }
    for stage in &manifest.stages {
        let bytes = model_file(dir, &stage.file);
        for (i, c) in stage.chunks.iter().enumerate() {
            let piece = &bytes[c.offset as usize..(c.offset + c.size) as usize];
            out.push((
                chunk(ModelFile::Stage(stage.index as u32), i as u32),
                ByteBuf::from(piece),
            ));
        }
    }
    out
}

/// The answer of a call that must succeed at the replica level.
fn ok<R: std::fmt::Debug>(what: &str, r: Result<R, local_replica::Error>) -> R {
    r.unwrap_or_else(|e| panic!("{what}: {e}"))
}

impl Env {
    /// Creates `n` worker canisters (controlled by [`controller`]), installs
    /// the worker wasm serving this task manager and adds them.
    pub fn add_workers(&mut self, n: usize) -> Vec<Principal> {
        let wasm = wasm("worker");
        let arg = encode_one(Some(worker_api::InitArgs {
            task_manager: self.task_manager,
        }))
        .expect("candid");
        (0..n)
            .map(|_| {
                let id = ok("create_canister", self.ic.create_canister(controller()));
                ok(
                    "installing a worker",
                    self.ic.install_wasm(
                        controller(),
                        id,
                        CanisterInstallMode::Install,
                        wasm.clone(),
                        arg.clone(),
                    ),
                );
                let added: Result<WorkerInfo, TmError> = ok(
                    "add_worker",
                    self.ic
                        .update_one(self.task_manager, controller(), "add_worker", &id),
                );
                added.expect("add_worker");
                id
            })
            .collect()
    }

    /// Registers and uploads a bundled model directory (`models/<dir>`).
    pub fn upload_model(&mut self, dir: &str) -> ModelInfo {
        let created: Result<ModelInfo, TmError> = ok(
            "create_model",
            self.ic.update_one(
                self.task_manager,
                controller(),
                "create_model",
                &CreateModelArgs {
                    manifest_json: ByteBuf::from(model_file(dir, "manifest.json")),
                },
            ),
        );
        let info = created.expect("create_model");
        for (chunk, bytes) in model_chunks(dir) {
            let r: Result<UploadProgress, TmError> = ok(
                "upload_chunk",
                self.ic.update_one(
                    self.task_manager,
                    controller(),
                    "upload_chunk",
                    &UploadChunkArgs { chunk, bytes },
                ),
            );
            r.expect("upload_chunk");
        }
        info
    }

    /// Deploys `model` on `pipelines` pipelines and runs until the workers
    /// have loaded their stages.
    pub fn deploy(&mut self, model: &str, pipelines: u32) -> Vec<PipelineInfo> {
        let r: Result<Vec<PipelineInfo>, TmError> = ok(
            "deploy_model",
            self.ic.update_one(
                self.task_manager,
                controller(),
                "deploy_model",
                &DeployModelArgs {
                    model: model.to_string(),
                    pipelines,
                },
            ),
        );
        r.expect("deploy_model");
        ok("loading", self.ic.run_until_idle());
        self.pipelines()
    }

    pub fn pipelines(&mut self) -> Vec<PipelineInfo> {
        let r: Result<Vec<PipelineInfo>, TmError> = ok(
            "pipelines",
            self.ic
                .query_one(self.task_manager, principal(200), "pipelines", &()),
        );
        r.expect("pipelines")
    }

    pub fn workers(&mut self) -> Vec<WorkerInfo> {
        let r: Result<Vec<WorkerInfo>, TmError> = ok(
            "workers",
            self.ic
                .query_one(self.task_manager, controller(), "workers", &()),
        );
        r.expect("workers")
    }

    pub fn register(&mut self, user: Principal) -> UserProfile {
        let r: Result<UserProfile, TmError> = ok(
            "register",
            self.ic.update_one(self.task_manager, user, "register", &()),
        );
        r.expect("register")
    }

    pub fn whoami(&mut self, user: Principal) -> UserProfile {
        let r: Result<UserProfile, TmError> = ok(
            "whoami",
            self.ic.query_one(self.task_manager, user, "whoami", &()),
        );
        r.expect("whoami")
    }

    pub fn generate(&mut self, user: Principal, request: &GenerateRequest) -> Result<u64, TmError> {
        ok(
            "generate",
            self.ic
                .update_one(self.task_manager, user, "generate", request),
        )
    }

    pub fn job(&mut self, user: Principal, job: u64) -> Result<JobInfo, TmError> {
        ok(
            "job",
            self.ic.query_one(self.task_manager, user, "job", &job),
        )
    }

    /// Ticks until the job has ended; every text seen on the way.
    pub fn wait_job(&mut self, user: Principal, job: u64) -> (JobInfo, Vec<String>) {
        let mut seen: Vec<String> = Vec::new();
        for _ in 0..100_000 {
            let info = self.job(user, job).expect("job");
            if seen.last() != Some(&info.text) {
                seen.push(info.text.clone());
            }
            if info.status.is_final() {
                return (info, seen);
            }
            self.ic.tick();
        }
        panic!("job {job} did not end");
    }

    /// Builds a replica-level call to a canister method (for calls the
    /// helpers above do not cover).
    pub fn call<A: CandidType, R: CandidType + for<'de> Deserialize<'de>>(
        &mut self,
        canister: Principal,
        sender: Principal,
        method: &str,
        arg: &A,
    ) -> Result<R, local_replica::Error> {
        self.ic.update_one(canister, sender, method, arg)
    }
}

/// A plain-text request with a fixed seed.
pub fn request(
    model: &str,
    prompt: &str,
    max_new_tokens: u32,
    sampling: Sampling,
    seed: u8,
) -> GenerateRequest {
    GenerateRequest {
        model: model.to_string(),
        prompt: Prompt::Text(prompt.to_string()),
        max_new_tokens,
        sampling,
        stop_sequences: vec![],
        seed: Some(ByteBuf::from(vec![seed; 32])),
    }
}
