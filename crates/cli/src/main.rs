//! `icllm`: the command line over the engine and the canister suite.
//!
//! On this machine, with the engine:
//! * `generate` — one prompt (plain text or a chat message), tokens streamed
//!   to the terminal as they are produced.
//! * `chat` — a conversation, from the terminal or from `--message` flags.
//! * `inspect` — prints a model directory's manifest and verifies every hash.
//! * `bench` — native prefill and decode tokens/s of the engine against
//!   onnxruntime on the same ONNX and prompts, and peak memory.
//!
//! In the embedded local replica (the default network, `--network local`):
//! * `replica-chat` — installs the task manager and workers, uploads the
//!   model (with a progress bar), deploys it and chats through the task
//!   manager, streaming tokens.
//! * `replica-bench` — the same deployment, measured: instructions per
//!   prefill and generated token, load, upload throughput, cycles.
//! * `replica serve` — the local replica behind the IC's HTTP interface, for
//!   official clients (`--port`, `--state-dir`).
//!
//! On a network (`--network ic` or a URL, `--identity PEM`), through the
//! deployed task manager: `upload`, `upload-worker`, `spawn-workers`,
//! `add-worker`, `deploy`, `register`, `set-quota`, `jobs`, and `chat`/`generate`, which
//! then run in the canisters instead of this process.
//!
//! ```sh
//! icllm chat --model models/smollm2-135m-instruct --stages 2 --message "What is the capital of France?"
//! icllm --network http://127.0.0.1:4943 --identity me.pem upload --model models/tiny-llama
//! icllm --network http://127.0.0.1:4943 --identity me.pem chat --model tiny-llama --message "Hi"
//! ```

mod bench;
mod inspect;
mod network;
mod options;
mod progress;
mod replica;
mod run;
mod serve;

use anyhow::{bail, Result};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "icllm",
    version,
    about = "Run ONNX language models with the icllm engine, in the local replica or on an IC network",
    after_help = "Networks: `--network local` (default) is the replica embedded in this process \
                  (replica-chat, replica-bench; chat and generate run the engine here). With \
                  `--network ic` or a URL, chat and generate go through the deployed task \
                  manager, and upload, upload-worker, spawn-workers, add-worker, deploy, \
                  register and jobs manage it. The task manager's id comes from --canister \
                  task_manager=ID or the project's .icp/ (icp-cli) or .dfx/ and \
                  canister_ids.json (dfx) state."
)]
struct Cli {
    #[command(flatten)]
    network: network::NetworkArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Continue one prompt, streaming the tokens (on a network: through the
    /// task manager, `--model` naming the deployed model).
    Generate(run::GenerateArgs),
    /// Chat with the model, interactive unless --message is given (on a
    /// network: through the task manager, `--model` naming the deployed
    /// model or its directory; registers the caller if needed).
    Chat(run::ChatArgs),
    /// Print a model's manifest and verify every stage, chunk and tokenizer hash.
    Inspect(inspect::InspectArgs),
    /// Measure prefill and decode tokens/s against onnxruntime.
    Bench(bench::BenchArgs),
    /// Chat through the canisters: local replica, task manager, workers.
    ReplicaChat(replica::ChatArgs),
    /// Measure the canisters: instructions per token, load, upload, cycles.
    ReplicaBench(replica::BenchArgs),
    /// Create and install the task manager on a local network (`replica
    /// serve`, `dfx start`), the caller its controller.
    InstallTaskManager(network::InstallTaskManagerArgs),
    /// Register a model directory and upload the chunks the task manager
    /// lacks: resumable, several calls in flight, retries with backoff
    /// (controllers).
    Upload(network::UploadArgs),
    /// Upload the worker module that spawn-workers installs (controllers).
    UploadWorker(network::UploadWorkerArgs),
    /// Have the task manager create and install worker canisters, paid
    /// from its cycles (controllers).
    SpawnWorkers(network::SpawnWorkersArgs),
    /// Add existing worker canisters (controllers).
    AddWorker(network::AddWorkerArgs),
    /// Deploy an uploaded model on idle workers and wait until they have
    /// loaded it (controllers).
    Deploy(network::DeployArgs),
    /// Register the caller as a user of the task manager.
    Register,
    /// Set a user's token bucket, or the default one (controllers).
    SetQuota(network::SetQuotaArgs),
    /// The caller's jobs, newest first.
    Jobs(network::JobsArgs),
    /// The local replica as a server: `icllm replica serve --port 4943`.
    Replica(serve::ReplicaArgs),
}

fn main() -> Result<()> {
    run(Cli::parse())
}

fn run(cli: Cli) -> Result<()> {
    let net = &cli.network;
    let local = net.is_local();
    match cli.command {
        Command::Generate(args) if local => run::generate(args),
        Command::Generate(args) => network::generate(net, args),
        Command::Chat(args) if local => run::chat(args),
        Command::Chat(args) => network::chat(net, args),
        Command::Inspect(args) => inspect::inspect(args),
        Command::Bench(args) => bench::bench(args),
        Command::ReplicaChat(_) | Command::ReplicaBench(_) if !local => bail!(
            "replica-chat and replica-bench run the embedded replica (`--network local`); on a \
             network, use upload, deploy and chat"
        ),
        Command::ReplicaChat(args) => replica::chat(args),
        Command::ReplicaBench(args) => replica::bench(args),
        Command::InstallTaskManager(args) => network::install_task_manager(net, args).map(|_| ()),
        Command::Upload(args) => network::upload(net, args),
        Command::UploadWorker(args) => network::upload_worker(net, args),
        Command::SpawnWorkers(args) => network::spawn_workers(net, args),
        Command::AddWorker(args) => network::add_worker(net, args),
        Command::Deploy(args) => network::deploy(net, args),
        Command::Register => network::register(net),
        Command::SetQuota(args) => network::set_quota(net, args),
        Command::Jobs(args) => network::jobs(net, args),
        Command::Replica(args) => serve::run(args),
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};
    use std::time::Duration;

    use clap::Parser;
    use suite::{TaskManager, Transport};
    use task_manager_api::JobStatus;

    use super::*;

    fn workspace() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
    }

    /// `$CARGO_TARGET_DIR/canisters/<name>.wasm`, built by
    /// `scripts/build_canisters.sh` when absent.
    fn canister_wasm(name: &str) -> PathBuf {
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .map(|p| {
                if p.is_relative() {
                    workspace().join(p)
                } else {
                    p
                }
            })
            .unwrap_or_else(|| workspace().join("target"));
        let path = target.join("canisters").join(format!("{name}.wasm"));
        if !path.is_file() {
            let status = std::process::Command::new("bash")
                .arg(workspace().join("scripts/build_canisters.sh"))
                .arg(name)
                .current_dir(workspace())
                .env("CARGO_TARGET_DIR", &target)
                .status()
                .expect("running scripts/build_canisters.sh");
            assert!(status.success(), "scripts/build_canisters.sh {name} failed");
        }
        path
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
        let install = Cli::try_parse_from([
            "icllm",
            "--network",
            &url,
            "--identity",
            admin_pem.to_str().unwrap(),
            "install-task-manager",
            "--wasm",
            task_manager_wasm.to_str().unwrap(),
            "--user-tokens",
            "100000",
            "--refill-per-sec",
            "100",
        ])
        .unwrap();
        let Command::InstallTaskManager(args) = install.command else {
            unreachable!("parsed as install-task-manager")
        };
        let tm_id = network::install_task_manager(&install.network, args).unwrap();
        // Without an identity, nobody would control it.
        let anonymous =
            Cli::try_parse_from(["icllm", "--network", &url, "install-task-manager"]).unwrap();
        let Command::InstallTaskManager(args) = anonymous.command else {
            unreachable!("parsed as install-task-manager")
        };
        let err = network::install_task_manager(&anonymous.network, args).unwrap_err();
        assert!(err.to_string().contains("--identity"), "{err:#}");
        let network: client::Network = url.parse().unwrap();
        let admin = client::identity::from_pem_file(&admin_pem).unwrap();
        let t = client::AgentTransport::connect(&network, Some(&admin)).unwrap();
        let worker = canister_wasm("worker");
        let canister = format!("task_manager={tm_id}");
        let model = workspace().join("models/tiny-llama");
        let icllm = |pem: &Path, args: &[&str]| {
            let mut argv = vec!["icllm", "--network", &url, "--canister", &canister];
            let pem = pem.to_str().unwrap();
            argv.extend(["--identity", pem]);
            argv.extend(args);
            run(Cli::try_parse_from(argv).unwrap())
        };
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
}
