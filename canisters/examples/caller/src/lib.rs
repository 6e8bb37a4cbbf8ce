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
//! Every job it starts is paid from its own bucket at the task manager, so
//! it asks (`ask`, `start`) and polls (`poll`) only for its controllers and
//! the principals a controller lets in with `allow` (`disallow` takes them
//! out, `allowed` lists them; at most [`access::MAX_ALLOWED`]); anyone else
//! gets [`ExampleError::NotAllowed`]. Each method checks its caller itself,
//! and `inspect_message` refuses the same ingress, and arguments larger than
//! a method takes, before the example pays for them. The configuration and
//! the allow list survive upgrades (`state`).
//!
//! ```text
//! dfx deploy example_caller
//! dfx canister call example_caller ask '("What is the capital of France?", 32 : nat32)'
//! dfx canister call example_caller allow '(principal "<a friend>")'
//! dfx deploy example_caller --argument '(opt record { task_manager = opt principal "<id>"; model = opt "tiny-llama" })'
//! ```

pub mod access;
mod admin;
mod config;
mod inspect;
mod state;
pub mod types;

use std::io::Write;

use candid::{CandidType, Deserialize, Principal};
use ic_cdk::call::Call;
use ic_cdk::{init, post_upgrade, pre_upgrade, query, update};
use task_manager_api::{ChatMessage, GenerateRequest, JobInfo, Prompt, Role, Sampling};

pub use config::{no_task_manager, DEFAULT_MODEL, TASK_MANAGER_ENV_VAR};
pub use inspect::MAX_QUESTION_BYTES;
pub use types::*;

use access::Caller;
use state::{mutate_state, read_state, State};

/// The task manager's id dfx exported to the build, if it did.
const BUILD_TASK_MANAGER: Option<&str> = option_env!("CANISTER_ID_TASK_MANAGER");

fn env_var() -> Option<String> {
    ic_cdk::api::env_var_name_exists(TASK_MANAGER_ENV_VAR)
        .then(|| ic_cdk::api::env_var_value(TASK_MANAGER_ENV_VAR))
}

/// The task manager and model to use now, or why there is none.
fn current() -> Result<Config, ExampleError> {
    let configured = read_state(|s| s.configured.clone());
    let (task_manager, task_manager_source) =
        config::resolve(configured.task_manager, env_var(), BUILD_TASK_MANAGER)
            .map_err(|message| ExampleError::NotConfigured { message })?;
    Ok(Config {
        task_manager,
        task_manager_source,
        model: configured
            .model
            .unwrap_or_else(|| DEFAULT_MODEL.to_string()),
    })
}

/// The configuration, for a caller the example spends for.
fn spending_config(caller: Caller) -> Result<Config, ExampleError> {
    read_state(|s| caller.may_spend(&s.allow_list))?;
    current()
}

#[init]
fn init(args: Option<InitArgs>) {
    mutate_state(|s| s.configured.apply(args.unwrap_or_default()));
}

#[pre_upgrade]
fn pre_upgrade() {
    let bytes = read_state(State::encode);
    ic_cdk::stable::StableWriter::default()
        .write_all(&bytes)
        .expect("saving the example's state");
}

#[post_upgrade]
fn post_upgrade(args: Option<InitArgs>) {
    let mut state = State::decode(&ic_cdk::stable::stable_bytes())
        .unwrap_or_else(|e| ic_cdk::trap(format!("restoring the example's state: {e}")));
    state.configured.apply(args.unwrap_or_default());
    mutate_state(|s| *s = state);
}

/// Sets the task manager and/or the model (controllers only).
#[update]
fn configure(args: InitArgs) -> AdminResult {
    let caller = Caller::current();
    mutate_state(|s| admin::configure(s, caller, args)).into()
}

/// Lets `principal` make the example spend (ask, start, poll) as its
/// controllers do (controllers only; at most 1,000 principals).
#[update]
fn allow(principal: Principal) -> AdminResult {
    let caller = Caller::current();
    mutate_state(|s| admin::allow(s, caller, principal)).into()
}

/// Takes `principal` off the allow list (controllers only).
#[update]
fn disallow(principal: Principal) -> AdminResult {
    let caller = Caller::current();
    mutate_state(|s| admin::disallow(s, caller, principal)).into()
}

/// The allow list (controllers only).
#[query]
fn allowed() -> AllowedResult {
    let caller = Caller::current();
    read_state(|s| admin::allowed(s, caller)).into()
}

/// The task manager and model the example uses now, or why it has none.
#[query]
fn config() -> ConfigResult {
    current().into()
}

async fn call<A: CandidType, R: CandidType + for<'de> Deserialize<'de>>(
    task_manager: Principal,
    method: &str,
    arg: &A,
) -> Result<R, ExampleError> {
    let failed = |message: String| ExampleError::CallFailed {
        method: method.to_string(),
        message,
    };
    let reply = Call::unbounded_wait(task_manager, method)
        .with_arg(arg)
        .await
        .map_err(|e| failed(e.to_string()))?;
    reply.candid::<R>().map_err(|e| failed(e.to_string()))
}

/// The task manager's own refusal of `method`.
fn refused(method: &str) -> impl FnOnce(task_manager_api::UserError) -> ExampleError + '_ {
    move |error| ExampleError::TaskManagerRefused {
        method: method.to_string(),
        error,
    }
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
            role: Role::User,
            content: question,
        }]),
        max_new_tokens,
        sampling: Sampling::default(),
        stop_sequences: vec![],
        seed: seed.map(|s| serde_bytes::ByteBuf::from(vec![s; 32])),
    }
}

/// Registers this canister with the task manager (idempotent), then checks
/// again that the example still spends for `caller`: a controller may have
/// changed the allow list while the call was out.
async fn register(task_manager: Principal, caller: Caller) -> Result<(), ExampleError> {
    let r: task_manager_api::register::Response = call(task_manager, "register", &()).await?;
    r.into_result().map_err(refused("register"))?;
    read_state(|s| Caller::of(caller.principal).may_spend(&s.allow_list))
}

/// Asks a question and waits for the whole answer (greedy; controllers
/// and allowed principals only).
#[update]
async fn ask(question: String, max_new_tokens: u32) -> AskResult {
    ask_impl(Caller::current(), question, max_new_tokens)
        .await
        .into()
}

async fn ask_impl(
    caller: Caller,
    question: String,
    max_new_tokens: u32,
) -> Result<String, ExampleError> {
    let config = spending_config(caller)?;
    register(config.task_manager, caller).await?;
    let r: task_manager_api::generate_and_wait::Response = call(
        config.task_manager,
        "generate_and_wait",
        &request(config.model, question, max_new_tokens, Some(0)),
    )
    .await?;
    r.into_result()
        .map(|job| job.text)
        .map_err(refused("generate_and_wait"))
}

/// Starts a job; read it with `poll` (controllers and allowed principals
/// only).
#[update]
async fn start(question: String, max_new_tokens: u32) -> StartResult {
    start_impl(Caller::current(), question, max_new_tokens)
        .await
        .into()
}

async fn start_impl(
    caller: Caller,
    question: String,
    max_new_tokens: u32,
) -> Result<u64, ExampleError> {
    let config = spending_config(caller)?;
    register(config.task_manager, caller).await?;
    let r: task_manager_api::generate::Response = call(
        config.task_manager,
        "generate",
        &request(config.model, question, max_new_tokens, Some(0)),
    )
    .await?;
    r.into_result().map_err(refused("generate"))
}

/// The job as the task manager reports it now (called as an update: a
/// canister reads another canister's query by calling it; controllers and
/// allowed principals only, since every job is the example's).
#[update]
async fn poll(job: u64) -> PollResult {
    poll_impl(Caller::current(), job).await.into()
}

async fn poll_impl(caller: Caller, job: u64) -> Result<Box<JobInfo>, ExampleError> {
    let config = spending_config(caller)?;
    let args = task_manager_api::job::Args {
        job,
        from_token: None,
    };
    let r: task_manager_api::job::Response = call(config.task_manager, "job", &args).await?;
    r.into_result().map(Box::new).map_err(refused("job"))
}

ic_cdk::export_candid!();

#[cfg(test)]
mod tests {
    /// The checked-in `.did` is what the code exports. Regenerate with
    /// `UPDATE_DID=1 cargo test -p example_caller candid`.
    #[test]
    fn candid_interface_is_checked_in() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("example_caller.did");
        did_check::assert_checked_in(&path, &super::__export_service(), "example_caller");
        let released =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("released/example_caller.did");
        did_check::assert_compatible(&released, &super::__export_service(), "example_caller");
    }
}
