//! The network commands as a user types them, against the served replica
//! (`replica_http`): the tiny model with two stages on two workers, and the
//! default model (SmolLM2-135M-Instruct) answering "Paris".

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;
use suite::{TaskManager, Transport};
use task_manager_api::JobStatus;

use super::*;

use suite::shipped::{wasm_path as canister_wasm, workspace};

/// `icllm --network URL [--identity PEM] install-task-manager ARGS…`,
/// parsed as a user types it.
fn install_task_manager(
    url: &str,
    identity: Option<&Path>,
    args: &[&str],
) -> Result<candid::Principal> {
    let mut argv = vec!["icllm", "--network", url];
    if let Some(pem) = identity {
        argv.extend(["--identity", pem.to_str().unwrap()]);
    }
    argv.push("install-task-manager");
    argv.extend(args);
    let cli = Cli::try_parse_from(argv).unwrap();
    let Command::InstallTaskManager(args) = cli.command else {
        unreachable!("parsed as install-task-manager")
    };
    network::install_task_manager(&cli.network, args)
}

/// `icllm --network URL --canister CANISTER --identity PEM ARGS…`.
fn icllm_as(url: &str, canister: &str, pem: &Path, args: &[&str]) -> Result<()> {
    let mut argv = vec!["icllm", "--network", url, "--canister", canister];
    argv.extend(["--identity", pem.to_str().unwrap()]);
    argv.extend(args);
    run(Cli::try_parse_from(argv).unwrap())
}

/// The commands as a user types them, against the served replica:
/// upload-worker, spawn-workers, upload, deploy, chat (which registers
/// the user) and jobs, with identities from icp-cli PEMs and the task
/// manager named by --canister.
#[test]
fn the_network_commands_deploy_and_chat_over_http() {
    let identities = workspace().join("crates/client/tests/identities");
    let admin_pem = identities.join("icp-ed25519.pem");
    let user_pem = identities.join("icp-secp256k1.pem");
    let server = replica_http::server::serve(replica_http::server::ServeConfig::default())
        .expect("the server starts");
    let url = server.url();
    // The task manager, created with cycles and installed by the admin.
    let task_manager_wasm = canister_wasm("task_manager");
    let tm_id = install_task_manager(
        &url,
        Some(&admin_pem),
        &[
            "--wasm",
            task_manager_wasm.to_str().unwrap(),
            "--user-tokens",
            "100000",
            "--refill-per-sec",
            "100",
        ],
    )
    .unwrap();
    // Without an identity, nobody would control it.
    let err = install_task_manager(&url, None, &[]).unwrap_err();
    assert!(err.to_string().contains("--identity"), "{err:#}");
    let network: client::Network = url.parse().unwrap();
    let admin = client::identity::from_pem_file(&admin_pem).unwrap();
    let t = client::AgentTransport::connect(&network, Some(&admin)).unwrap();
    let worker = canister_wasm("worker");
    let canister = format!("task_manager={tm_id}");
    let model = workspace().join("models/tiny-llama");
    let icllm = |pem: &Path, args: &[&str]| icllm_as(&url, &canister, pem, args);
    let model_dir = model.to_str().unwrap();
    let worker_path = worker.to_str().unwrap();
    icllm(&admin_pem, &["upload-worker", "--wasm", worker_path]).unwrap();
    icllm(&admin_pem, &["spawn-workers", "--count", "1"]).unwrap();
    icllm(
        &admin_pem,
        &[
            "upload",
            "--model",
            model_dir,
            "--stages",
            "2",
            "--parallel",
            "4",
        ],
    )
    .unwrap();
    // A second run finds every chunk there.
    icllm(
        &admin_pem,
        &["upload", "--model", model_dir, "--stages", "2"],
    )
    .unwrap();
    // Two stages need two workers: deploying on one fails, typed.
    let err = icllm(
        &admin_pem,
        &["deploy", "--model", model_dir, "--stages", "2"],
    )
    .unwrap_err();
    assert!(err.to_string().contains("NotEnoughWorkers"), "{err:#}");
    icllm(&admin_pem, &["spawn-workers", "--count", "1"]).unwrap();
    icllm(
        &admin_pem,
        &["deploy", "--model", model_dir, "--stages", "2"],
    )
    .unwrap();
    // The user is not a controller: uploads are refused, with the hint.
    let refused = icllm(
        &user_pem,
        &["upload", "--model", model_dir, "--stages", "2"],
    )
    .unwrap_err();
    assert!(format!("{refused:#}").contains("--identity"), "{refused:#}");
    icllm(
        &user_pem,
        &[
            "chat",
            "--model",
            "tiny-llama",
            "--message",
            "What is the capital of France?",
            "--max-new-tokens",
            "6",
        ],
    )
    .unwrap();
    icllm(&user_pem, &["jobs"]).unwrap();

    let user = client::identity::from_pem_file(&user_pem).unwrap();
    let ut = client::AgentTransport::connect(&network, Some(&user)).unwrap();
    assert_eq!(ut.caller(), user.principal);
    let jobs = TaskManager::new(&ut, tm_id).my_jobs(None, 10).unwrap();
    assert_eq!(jobs.len(), 1);
    assert!(
        matches!(jobs[0].status, JobStatus::Completed { .. }),
        "{:?}",
        jobs[0].status
    );
    assert_eq!(jobs[0].generated_tokens, 6);
    assert_eq!(jobs[0].model, "tiny-llama");
    // set-quota: the user's own bucket, then the default one; a user
    // cannot set quotas.
    let user_text = user.principal.to_text();
    icllm(
        &admin_pem,
        &[
            "set-quota",
            "--user",
            &user_text,
            "--capacity",
            "40",
            "--refill-per-sec",
            "1",
        ],
    )
    .unwrap();
    let profile = TaskManager::new(&ut, tm_id).whoami().unwrap();
    assert!(profile.quota_is_override);
    assert_eq!(
        (profile.quota.capacity, profile.quota.refill_per_sec),
        (40, 1)
    );
    assert!(profile.tokens_available <= 40);
    icllm(
        &admin_pem,
        &["set-quota", "--capacity", "500", "--refill-per-sec", "2"],
    )
    .unwrap();
    let reply = t
        .query(tm_id, "config", candid::encode_args(()).unwrap())
        .unwrap();
    let config: Result<task_manager_api::Config, task_manager_api::AdminError> =
        candid::decode_one(&reply).unwrap();
    let config = config.unwrap();
    assert_eq!(
        (
            config.default_quota.capacity,
            config.default_quota.refill_per_sec
        ),
        (500, 2)
    );
    let refused = icllm(
        &user_pem,
        &["set-quota", "--capacity", "9", "--refill-per-sec", "9"],
    )
    .unwrap_err();
    assert!(format!("{refused:#}").contains("--identity"), "{refused:#}");
    let pipelines = TaskManager::new(&t, tm_id)
        .wait_deployed("tiny-llama", Duration::ZERO, Duration::ZERO)
        .unwrap();
    assert_eq!(pipelines[0].workers.len(), 2);
    server.shutdown();
}

/// `models/smollm2-135m-instruct/q8-1` (the default model: one stage of
/// 8-bit weights), made by `scripts/prepare_smollm2.sh`; `None` (with a
/// notice) when it was not prepared, unless `ENGINE_REQUIRE_SMOLLM2=1` (the
/// test command), which makes it a failure.
fn smollm2() -> Option<PathBuf> {
    let dir = workspace().join("models/smollm2-135m-instruct/q8-1");
    model_format::prepared::prepared(&dir).then_some(dir)
}

/// The default model through the server, as the README's main command runs
/// it: `icllm upload` sends SmolLM2-135M-Instruct's one int8 stage (150
/// MiB, four calls in flight) over HTTP, a worker spawned with cycles for
/// its heap pulls and loads it, and `icllm chat --network URL` answers that
/// the capital of France is Paris.
#[test]
fn smollm2_answers_paris_through_the_served_replica() {
    let Some(model) = smollm2() else { return };
    let identities = workspace().join("crates/client/tests/identities");
    let admin_pem = identities.join("icp-ed25519.pem");
    let user_pem = identities.join("icp-p256.pem");
    let server = replica_http::server::serve(replica_http::server::ServeConfig::default())
        .expect("the server starts");
    let url = server.url();
    let task_manager_wasm = canister_wasm("task_manager");
    let wasm = task_manager_wasm.to_str().unwrap();
    let tm_id = install_task_manager(&url, Some(&admin_pem), &["--wasm", wasm]).unwrap();
    let canister = format!("task_manager={tm_id}");
    let icllm = |pem: &Path, args: &[&str]| icllm_as(&url, &canister, pem, args);
    let worker = canister_wasm("worker");
    let model_dir = model.to_str().unwrap();
    icllm(
        &admin_pem,
        &["upload-worker", "--wasm", worker.to_str().unwrap()],
    )
    .unwrap();
    icllm(
        &admin_pem,
        &[
            "spawn-workers",
            "--count",
            "1",
            "--cycles-per-worker",
            "10T",
        ],
    )
    .unwrap();
    icllm(
        &admin_pem,
        &["upload", "--model", model_dir, "--parallel", "4"],
    )
    .unwrap();
    icllm(&admin_pem, &["deploy", "--model", model_dir]).unwrap();
    icllm(
        &user_pem,
        &[
            "chat",
            "--model",
            model_dir,
            "--message",
            "What is the capital of France? Answer in one sentence.",
            "--max-new-tokens",
            "12",
        ],
    )
    .unwrap();

    let network: client::Network = url.parse().unwrap();
    let user = client::identity::from_pem_file(&user_pem).unwrap();
    let ut = client::AgentTransport::connect(&network, Some(&user)).unwrap();
    let jobs = TaskManager::new(&ut, tm_id).my_jobs(None, 10).unwrap();
    assert_eq!(jobs.len(), 1);
    assert!(
        matches!(jobs[0].status, JobStatus::Completed { .. }),
        "{:?}",
        jobs[0].status
    );
    assert_eq!(jobs[0].model, "smollm2-135m-instruct");
    assert!(jobs[0].text.contains("Paris"), "{:?}", jobs[0].text);
    server.shutdown();
}
