//! Helpers for the canister integration tests: building the canisters'
//! wasm, a replica with them installed, and the bundled models' files.
//!
//! The tests (`tests/canisters/`, one binary) run the real wasm in
//! [`local_replica`]; they build the canisters themselves with
//! `scripts/build_canisters.sh <name>` (a quick no-op when up to date).

use candid::{CandidType, Deserialize, Principal};
use local_replica::LocalReplica;
use serde_bytes::ByteBuf;
use suite::{Suite, SuiteError, Wasms};
use task_manager_api::{
    AdminError, ChunkRef, GenerateRequest, InitArgs, JobInfo, ModelInfo, PipelineInfo, Prompt,
    Sampling, UserError, UserProfile, WorkerInfo,
};

pub use suite::controller;

pub mod test_canisters;

/// The canisters this repository ships.
pub const CANISTERS: [&str; 3] = ["task_manager", "worker", "example_caller"];

pub use suite::shipped::{target_dir, workspace};

/// The wasm of one of [`CANISTERS`] as it ships (canister profile, candid
/// metadata), built once per test run, only the canisters a test asks for.
pub fn wasm(name: &str) -> Vec<u8> {
    assert!(
        CANISTERS.contains(&name),
        "{name} is not one of {CANISTERS:?}"
    );
    suite::shipped::wasm(name)
}

/// A principal for tests: `n` distinguishes users.
pub fn principal(n: u8) -> Principal {
    Principal::from_slice(&[n, 0x17, 0x42, 0x01])
}

/// Compiled modules are kept here between test processes.
pub fn replica_config() -> local_replica::Config {
    local_replica::Config {
        cache_dir: Some(target_dir().join("replica-cache")),
        ..Default::default()
    }
}

/// The suite in a fresh replica, with test-flavoured helpers: replica
/// failures panic, the task manager's own errors are returned.
pub struct Env {
    pub suite: Suite,
}

impl std::ops::Deref for Env {
    type Target = Suite;
    fn deref(&self) -> &Suite {
        &self.suite
    }
}

impl std::ops::DerefMut for Env {
    fn deref_mut(&mut self) -> &mut Suite {
        &mut self.suite
    }
}

/// The task manager's error for a user, or a panic for anything else.
pub fn user_err<T>(what: &str, r: Result<T, SuiteError>) -> Result<T, UserError> {
    match r {
        Ok(v) => Ok(v),
        Err(SuiteError::User(e)) => Err(e),
        Err(e) => panic!("{what}: {e}"),
    }
}

/// The task manager's error for a controller, or a panic for anything else.
pub fn admin_err<T>(what: &str, r: Result<T, SuiteError>) -> Result<T, AdminError> {
    match r {
        Ok(v) => Ok(v),
        Err(SuiteError::Admin(e)) => Err(e),
        Err(e) => panic!("{what}: {e}"),
    }
}

/// The value of a call that must succeed.
fn must<T>(what: &str, r: Result<T, SuiteError>) -> T {
    r.unwrap_or_else(|e| panic!("{what}: {e}"))
}

impl Env {
    pub fn new(args: InitArgs) -> Env {
        let ic = LocalReplica::with_config(replica_config()).expect("a replica");
        let wasms = Wasms {
            task_manager: wasm("task_manager"),
            worker: wasm("worker"),
        };
        Env {
            suite: must(
                "installing the task manager",
                Suite::install(ic, wasms, args),
            ),
        }
    }

    pub fn add_workers(&mut self, n: usize) -> Vec<Principal> {
        must("adding workers", self.suite.add_workers(n))
    }

    /// Registers and uploads a bundled model directory (`models/<dir>`).
    pub fn upload_model(&mut self, dir: &str) -> ModelInfo {
        let path = workspace().join("models").join(dir);
        must("uploading", self.suite.upload_model(&path, &mut |_| {}))
    }

    /// Deploys `model` on `pipelines` pipelines; every one must be healthy.
    pub fn deploy(&mut self, model: &str, pipelines: u32) -> Vec<PipelineInfo> {
        let deployed = must("deploy_model", self.suite.deploy(model, pipelines));
        if !deployed.iter().all(|p| p.healthy) {
            panic!(
                "the workers did not load {model}:\n{}",
                self.suite.diagnosis()
            );
        }
        deployed
    }

    pub fn pipelines(&mut self) -> Vec<PipelineInfo> {
        must("pipelines", self.suite.pipelines())
    }

    pub fn workers(&mut self) -> Vec<WorkerInfo> {
        must("workers", self.suite.workers())
    }

    pub fn register(&mut self, user: Principal) -> UserProfile {
        must("register", self.suite.register(user))
    }

    pub fn whoami(&mut self, user: Principal) -> UserProfile {
        must("whoami", self.suite.whoami(user))
    }

    pub fn generate(
        &mut self,
        user: Principal,
        request: &GenerateRequest,
    ) -> Result<u64, UserError> {
        user_err("generate", self.suite.generate(user, request))
    }

    pub fn job(&mut self, user: Principal, job: u64) -> Result<JobInfo, UserError> {
        user_err("job", self.suite.job(user, job))
    }

    /// Ticks with time passing, a second a round, until the job has ended
    /// (what waits on timers: retries, the watchdog). Never waits for the
    /// replica to idle: a canister that never answers keeps it busy.
    pub fn wait_job_as_time_passes(&mut self, user: Principal, job: u64) -> JobInfo {
        for _ in 0..2_000 {
            let info = self.job(user, job).expect("job");
            if info.status.is_final() {
                return info;
            }
            self.suite
                .ic
                .advance_time(std::time::Duration::from_secs(1));
            self.suite.ic.tick();
        }
        panic!("job {job} did not end:\n{}", self.suite.diagnosis());
    }

    /// A controller's update to the task manager.
    pub fn admin<A: CandidType, R: CandidType + for<'de> Deserialize<'de>>(
        &mut self,
        method: &str,
        arg: &A,
    ) -> Result<R, AdminError> {
        admin_err(method, self.suite.admin(method, arg))
    }

    /// A user's update to the task manager.
    pub fn user_update<A: CandidType, R: CandidType + for<'de> Deserialize<'de>>(
        &mut self,
        user: Principal,
        method: &str,
        arg: &A,
    ) -> Result<R, UserError> {
        user_err(method, self.suite.update(user, method, arg))
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
            self.suite.ic.tick();
        }
        panic!("job {job} did not end:\n{}", self.suite.diagnosis());
    }

    /// Upgrades `canister` to `wasm` (through the chunk store when the
    /// module is over the 2 MiB message limit, as dfx and icp do).
    pub fn upgrade(
        &mut self,
        canister: Principal,
        wasm: Vec<u8>,
        arg: Vec<u8>,
    ) -> Result<(), local_replica::Error> {
        self.suite.ic.install_wasm(
            controller(),
            canister,
            local_replica::CanisterInstallMode::Upgrade(None),
            wasm,
            arg,
        )
    }

    /// Installs a test canister (see [`test_canisters`]) with plenty of
    /// cycles; its id.
    pub fn install_test_canister(&mut self, wat: &str) -> Principal {
        let id = must(
            "creating a test canister",
            self.suite
                .ic
                .create_canister(controller())
                .map_err(SuiteError::from),
        );
        must(
            "installing a test canister",
            self.suite
                .ic
                .install_canister(controller(), id, test_canisters::module(wat), Vec::new())
                .map_err(SuiteError::from),
        );
        id
    }

    /// Calls `method` of `callee` from the `proxy` canister (so that the
    /// callee sees a canister as its caller, past `inspect_message`): the
    /// reply's bytes, or the reject.
    pub fn call_from(
        &mut self,
        proxy: Principal,
        callee: Principal,
        method: &str,
        arg: Vec<u8>,
    ) -> Result<Vec<u8>, local_replica::Error> {
        let arg = test_canisters::proxy_arg(callee, method, &arg);
        self.suite.ic.update_call(proxy, controller(), "proxy", arg)
    }

    /// [`Env::call_from`] with candid in and out.
    pub fn call_from_as<A: CandidType, R: CandidType + for<'de> Deserialize<'de>>(
        &mut self,
        proxy: Principal,
        callee: Principal,
        method: &str,
        arg: &A,
    ) -> Result<R, local_replica::Error> {
        let bytes = self.call_from(
            proxy,
            callee,
            method,
            candid::encode_one(arg).expect("candid"),
        )?;
        Ok(candid::decode_one(&bytes).unwrap_or_else(|e| panic!("{method}'s reply: {e}")))
    }

    /// An update call to any canister (for what the helpers do not cover).
    pub fn call<A: CandidType, R: CandidType + for<'de> Deserialize<'de>>(
        &mut self,
        canister: Principal,
        sender: Principal,
        method: &str,
        arg: &A,
    ) -> Result<R, local_replica::Error> {
        self.suite.ic.update_one(canister, sender, method, arg)
    }
}

/// A file of a bundled model directory (`models/<dir>/<name>`).
pub fn model_file(dir: &str, name: &str) -> Vec<u8> {
    must(
        "reading a model file",
        suite::read_model_file(&workspace().join("models").join(dir), name),
    )
}

/// Every chunk of a bundled model directory with its bytes, in upload order.
pub fn model_chunks(dir: &str) -> Vec<(ChunkRef, ByteBuf)> {
    must(
        "reading a model",
        suite::model_chunks(&workspace().join("models").join(dir)),
    )
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
