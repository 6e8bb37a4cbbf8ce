//! `icllm`: the command line over the engine and the canister suite.
//!
//! On this machine, with the engine:
//! * `generate` — one prompt (plain text or a chat message), tokens streamed
//!   to the terminal as they are produced.
//! * `chat` — a conversation, from the terminal or from `--message` flags.
//! * `inspect` — prints a model directory's manifest and verifies every hash.
//! * `quantize` — a model's stages with 8-bit weights, as a new model
//!   directory.
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
mod quantize;
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
    /// Write a model's stages with 8-bit weights (q8) into a new model directory.
    Quantize(quantize::QuantizeArgs),
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
        Command::Quantize(args) => quantize::quantize(args),
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
mod tests;
