//! An example of another canister using the suite over candid.
//!
//! It registers itself with the task manager (a canister is a user like any
//! other: it gets a rate-limit bucket), then either waits for a whole
//! answer with `generate_and_wait`, or starts a job with `generate` and
//! reads it with the `job` query, as a browser would, by polling.
//!
//! The task manager it calls is the first of:
//!
//! 1. the one given explicitly: the install or upgrade argument
//!    (`opt record { task_manager = opt principal "…" }`), or `configure`
//!    (controllers only);
//! 2. the canister environment variable `PUBLIC_CANISTER_ID:task_manager`,
//!    which icp-cli sets on every canister of the project at `icp deploy`;
//! 3. the id dfx gave the build: dfx exports `CANISTER_ID_TASK_MANAGER` to
//!    the build command of a canister that lists `task_manager` in its
//!    `dependencies` (dfx.json does).
//!
//! The model is the one given explicitly, else `smollm2-135m-instruct`.
//! Without a task manager the canister still installs; its methods answer
//! with an error that says how to give one.
//!
//! ```text
//! dfx deploy example_caller
//! dfx canister call example_caller ask '("What is the capital of France?", 32 : nat32)'
//! dfx deploy example_caller --argument '(opt record { task_manager = opt principal "<id>"; model = opt "tiny-llama" })'
//! ```

use std::cell::RefCell;

use candid::{CandidType, Deserialize, Principal};
use ic_cdk::call::Call;
use ic_cdk::{init, post_upgrade, pre_upgrade, query, update};
use task_manager_api::{ChatMessage, GenerateRequest, JobInfo, Prompt, Sampling, UserProfile};

/// The model asked when none is given.
pub const DEFAULT_MODEL: &str = "smollm2-135m-instruct";

/// The canister environment variable icp-cli sets to the task manager's id.
pub const TASK_MANAGER_ENV_VAR: &str = "PUBLIC_CANISTER_ID:task_manager";

/// The task manager's id dfx exported to the build, if it did.
const BUILD_TASK_MANAGER: Option<&str> = option_env!("CANISTER_ID_TASK_MANAGER");

/// The install and upgrade argument, and `configure`'s: each field given
/// replaces the configured one; a field left out keeps it.
#[derive(CandidType, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct InitArgs {
    /// The task manager to call (else the canister environment variable
    /// `PUBLIC_CANISTER_ID:task_manager`, else the build's
    /// `CANISTER_ID_TASK_MANAGER`).
    pub task_manager: Option<Principal>,
    /// The model to ask (else `smollm2-135m-instruct`).
    pub model: Option<String>,
}

/// Where the task manager's id came from.
#[derive(CandidType, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskManagerSource {
    /// The install or upgrade argument, or `configure`.
    Configured,
    /// The canister environment variable `PUBLIC_CANISTER_ID:task_manager`.
    CanisterEnvironment,
    /// `CANISTER_ID_TASK_MANAGER` at build time.
    Build,
}

/// What the example uses now (`config`).
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub task_manager: Principal,
    pub task_manager_source: TaskManagerSource,
    pub model: String,
}

/// What the example answers: the text, or why there is none.
pub type Answer = Result<String, String>;

/// What was given explicitly; kept across upgrades (candid in stable
/// memory).
#[derive(CandidType, Deserialize, Clone, Debug, Default)]
struct Configured {
    task_manager: Option<Principal>,
    model: Option<String>,
}

impl Configured {
    fn apply(&mut self, args: InitArgs) {
        if let Some(tm) = args.task_manager {
            self.task_manager = Some(tm);
        }
        if let Some(model) = args.model {
            self.model = Some(model);
        }
    }
}

thread_local! {
    static CONFIGURED: RefCell<Configured> = RefCell::default();
}

/// The message of every method while no task manager is known.
pub fn no_task_manager() -> String {
    "no task manager configured: deploy with (opt record { task_manager = opt principal \"…\" }) \
     or as a dependency of task_manager, or call configure (controllers)"
        .to_string()
}

/// The task manager to call, in the order the module docs give, from what
/// was configured, the canister environment variable's value and the
/// build-time id.
fn resolve(
    configured: Option<Principal>,
    env_var: Option<String>,
    build: Option<&str>,
) -> Result<(Principal, TaskManagerSource), String> {
    if let Some(tm) = configured {
        return Ok((tm, TaskManagerSource::Configured));
    }
    if let Some(text) = env_var {
        return Principal::from_text(text.trim())
            .map(|tm| (tm, TaskManagerSource::CanisterEnvironment))
            .map_err(|e| {
                format!("the canister environment variable {TASK_MANAGER_ENV_VAR} = {text:?} is not a principal: {e}")
            });
    }
    if let Some(text) = build {
        return Principal::from_text(text.trim())
            .map(|tm| (tm, TaskManagerSource::Build))
            .map_err(|e| {
                format!("CANISTER_ID_TASK_MANAGER = {text:?} at build time is not a principal: {e}")
            });
    }
    Err(no_task_manager())
}

fn env_var() -> Option<String> {
    ic_cdk::api::env_var_name_exists(TASK_MANAGER_ENV_VAR)
        .then(|| ic_cdk::api::env_var_value(TASK_MANAGER_ENV_VAR))
}

fn current() -> Result<Config, String> {
    let configured = CONFIGURED.with_borrow(|c| c.clone());
    let (task_manager, task_manager_source) =
        resolve(configured.task_manager, env_var(), BUILD_TASK_MANAGER)?;
    Ok(Config {
        task_manager,
        task_manager_source,
        model: configured
            .model
            .unwrap_or_else(|| DEFAULT_MODEL.to_string()),
    })
}

#[init]
fn init(args: Option<InitArgs>) {
    CONFIGURED.with_borrow_mut(|c| c.apply(args.unwrap_or_default()));
}

#[pre_upgrade]
fn pre_upgrade() {
    let configured = CONFIGURED.with_borrow(|c| c.clone());
    ic_cdk::storage::stable_save((configured,)).expect("saving the configuration");
}

#[post_upgrade]
fn post_upgrade(args: Option<InitArgs>) {
    // A module from before the configuration was saved left stable memory
    // empty.
    let mut configured = if ic_cdk::stable::stable_size() == 0 {
        Configured::default()
    } else {
        let (c,): (Configured,) =
            ic_cdk::storage::stable_restore().expect("restoring the configuration");
        c
    };
    configured.apply(args.unwrap_or_default());
    CONFIGURED.with_borrow_mut(|c| *c = configured);
}

fn caller_is_controller() -> Result<(), String> {
    if ic_cdk::api::is_controller(&ic_cdk::api::msg_caller()) {
        Ok(())
    } else {
        Err("only a controller of the example can configure it".to_string())
    }
}

/// Sets the task manager and/or the model (controllers only).
#[update(guard = "caller_is_controller")]
fn configure(args: InitArgs) {
    CONFIGURED.with_borrow_mut(|c| c.apply(args));
}

/// The task manager and model the example uses now, or why it has none.
#[query]
fn config() -> Result<Config, String> {
    current()
}

async fn call<A: CandidType, R: CandidType + for<'de> Deserialize<'de>>(
    task_manager: Principal,
    method: &str,
    arg: &A,
) -> Result<R, String> {
    let reply = Call::unbounded_wait(task_manager, method)
        .with_arg(arg)
        .await
        .map_err(|e| format!("{method}: {e}"))?;
    reply.candid::<R>().map_err(|e| format!("{method}: {e}"))
}

fn request(
    model: String,
    question: String,
    max_new_tokens: u32,
    seed: Option<u8>,
) -> GenerateRequest {
    GenerateRequest {
        model,
        prompt: Prompt::Chat(vec![ChatMessage {
            role: "user".into(),
            content: question,
        }]),
        max_new_tokens,
        sampling: Sampling::default(),
        stop_sequences: vec![],
        seed: seed.map(|s| serde_bytes::ByteBuf::from(vec![s; 32])),
    }
}

/// Registers this canister with the task manager (idempotent).
async fn register(task_manager: Principal) -> Result<(), String> {
    let r: Result<UserProfile, task_manager_api::Error> =
        call(task_manager, "register", &()).await?;
    r.map(|_| ()).map_err(|e| e.to_string())
}

/// Asks a question and waits for the whole answer (greedy).
#[update]
async fn ask(question: String, max_new_tokens: u32) -> Answer {
    let config = current()?;
    register(config.task_manager).await?;
    let r: task_manager_api::generate_and_wait::Response = call(
        config.task_manager,
        "generate_and_wait",
        &request(config.model, question, max_new_tokens, Some(0)),
    )
    .await?;
    r.map(|job| job.text).map_err(|e| e.to_string())
}

/// Starts a job; read it with `poll`.
#[update]
async fn start(question: String, max_new_tokens: u32) -> Result<u64, String> {
    let config = current()?;
    register(config.task_manager).await?;
    let r: task_manager_api::generate::Response = call(
        config.task_manager,
        "generate",
        &request(config.model, question, max_new_tokens, Some(0)),
    )
    .await?;
    r.map_err(|e| e.to_string())
}

/// The job as the task manager reports it now (called as an update: a
/// canister reads another canister's query by calling it).
#[update]
async fn poll(job: u64) -> Result<JobInfo, String> {
    let config = current()?;
    let r: task_manager_api::job::Response = call(config.task_manager, "job", &job).await?;
    r.map_err(|e| e.to_string())
}

ic_cdk::export_candid!();

#[cfg(test)]
mod tests {
    use super::*;

    /// The checked-in `.did` is what the code exports. Regenerate with
    /// `UPDATE_DID=1 cargo test -p example_caller candid`.
    #[test]
    fn candid_interface_is_checked_in() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("example_caller.did");
        did_check::assert_checked_in(&path, &super::__export_service(), "example_caller");
    }

    fn id(n: u8) -> Principal {
        Principal::from_slice(&[n; 10])
    }

    #[test]
    fn explicit_then_environment_then_build() {
        let env = Some(id(2).to_text());
        let build = id(3).to_text();
        assert_eq!(
            resolve(Some(id(1)), env.clone(), Some(&build)),
            Ok((id(1), TaskManagerSource::Configured))
        );
        assert_eq!(
            resolve(None, env, Some(&build)),
            Ok((id(2), TaskManagerSource::CanisterEnvironment))
        );
        assert_eq!(
            resolve(None, None, Some(&build)),
            Ok((id(3), TaskManagerSource::Build))
        );
        assert_eq!(resolve(None, None, None), Err(no_task_manager()));
    }

    #[test]
    fn a_bad_id_is_reported_not_skipped() {
        let e = resolve(None, Some("not-a-principal".into()), Some(&id(3).to_text())).unwrap_err();
        assert!(e.contains(TASK_MANAGER_ENV_VAR), "{e}");
        let e = resolve(None, None, Some("nope")).unwrap_err();
        assert!(e.contains("CANISTER_ID_TASK_MANAGER"), "{e}");
    }

    #[test]
    fn given_fields_replace_and_missing_ones_keep() {
        let mut c = Configured::default();
        c.apply(InitArgs {
            task_manager: Some(id(1)),
            model: None,
        });
        c.apply(InitArgs {
            task_manager: None,
            model: Some("tiny-llama".into()),
        });
        assert_eq!(c.task_manager, Some(id(1)));
        assert_eq!(c.model.as_deref(), Some("tiny-llama"));
    }
}
