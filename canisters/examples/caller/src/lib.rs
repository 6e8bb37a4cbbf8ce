//! An example of another canister using the suite over candid.
//!
//! It registers itself with the task manager (a canister is a user like any
//! other: it gets a rate-limit bucket), then either waits for a whole
//! answer with `generate_and_wait`, or starts a job with `generate` and
//! reads it with the `job` query, as a browser would, by polling.
//!
//! ```text
//! dfx deploy example_caller --argument '(record { task_manager = principal "<id>"; model = "smollm2-135m-instruct" })'
//! dfx canister call example_caller ask '("What is the capital of France?", 32 : nat32)'
//! ```

use std::cell::RefCell;

use candid::{CandidType, Deserialize, Principal};
use ic_cdk::call::Call;
use ic_cdk::{init, update};
use task_manager_api::{ChatMessage, GenerateRequest, JobInfo, Prompt, Sampling, UserProfile};

#[derive(CandidType, Deserialize, Clone, Debug)]
pub struct InitArgs {
    pub task_manager: Principal,
    pub model: String,
}

/// What the example answers: the text, or why there is none.
pub type Answer = Result<String, String>;

thread_local! {
    static CONFIG: RefCell<Option<InitArgs>> = const { RefCell::new(None) };
}

fn config() -> InitArgs {
    // Set in init: a missing argument fails the install.
    CONFIG.with_borrow(|c| c.clone().expect("initialised"))
}

#[init]
fn init(args: InitArgs) {
    CONFIG.with_borrow_mut(|c| *c = Some(args));
}

async fn call<A: CandidType, R: CandidType + for<'de> Deserialize<'de>>(
    method: &str,
    arg: &A,
) -> Result<R, String> {
    let tm = config().task_manager;
    let reply = Call::unbounded_wait(tm, method)
        .with_arg(arg)
        .await
        .map_err(|e| format!("{method}: {e}"))?;
    reply.candid::<R>().map_err(|e| format!("{method}: {e}"))
}

fn request(question: String, max_new_tokens: u32, seed: Option<u8>) -> GenerateRequest {
    GenerateRequest {
        model: config().model,
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
async fn register() -> Result<(), String> {
    let r: Result<UserProfile, task_manager_api::Error> = call("register", &()).await?;
    r.map(|_| ()).map_err(|e| e.to_string())
}

/// Asks a question and waits for the whole answer (greedy).
#[update]
async fn ask(question: String, max_new_tokens: u32) -> Answer {
    register().await?;
    let r: task_manager_api::generate_and_wait::Response = call(
        "generate_and_wait",
        &request(question, max_new_tokens, Some(0)),
    )
    .await?;
    r.map(|job| job.text).map_err(|e| e.to_string())
}

/// Starts a job; read it with `poll`.
#[update]
async fn start(question: String, max_new_tokens: u32) -> Result<u64, String> {
    register().await?;
    let r: task_manager_api::generate::Response =
        call("generate", &request(question, max_new_tokens, Some(0))).await?;
    r.map_err(|e| e.to_string())
}

/// The job as the task manager reports it now (called as an update: a
/// canister reads another canister's query by calling it).
#[update]
async fn poll(job: u64) -> Result<JobInfo, String> {
    let r: task_manager_api::job::Response = call("job", &job).await?;
    r.map_err(|e| e.to_string())
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
    }
}
