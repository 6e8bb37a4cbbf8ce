//! `icllm`: the command line over the engine.
//!
//! * `generate` — one prompt (plain text or a chat message), tokens streamed
//!   to the terminal as they are produced.
//! * `chat` — a conversation, from the terminal or from `--message` flags.
//! * `inspect` — prints a model directory's manifest and verifies every hash.
//! * `bench` — native prefill and decode tokens/s of the engine against
//!   onnxruntime on the same ONNX and prompts, and peak memory.
//! * `replica-chat` — the canister suite in the local replica: installs the
//!   task manager and workers, uploads the model (with a progress bar),
//!   deploys it and chats through the task manager, streaming tokens.
//! * `replica-bench` — the same deployment, measured: instructions per
//!   prefill and generated token, load, upload throughput, cycles.
//! * `replica serve` — the local replica behind the IC's HTTP interface, for
//!   official clients (`--port`, `--state-dir`).
//!
//! ```sh
//! icllm chat --model models/smollm2-135m-instruct --stages 2 --message "What is the capital of France?"
//! ```

mod bench;
mod inspect;
mod options;
mod replica;
mod run;
mod serve;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "icllm",
    version,
    about = "Run ONNX language models with the icllm engine"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Continue one prompt, streaming the tokens.
    Generate(run::GenerateArgs),
    /// Chat with the model (interactive unless --message is given).
    Chat(run::ChatArgs),
    /// Print a model's manifest and verify every stage, chunk and tokenizer hash.
    Inspect(inspect::InspectArgs),
    /// Measure prefill and decode tokens/s against onnxruntime.
    Bench(bench::BenchArgs),
    /// Chat through the canisters: local replica, task manager, workers.
    ReplicaChat(replica::ChatArgs),
    /// Measure the canisters: instructions per token, load, upload, cycles.
    ReplicaBench(replica::BenchArgs),
    /// The local replica as a server: `icllm replica serve --port 4943`.
    Replica(serve::ReplicaArgs),
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Generate(args) => run::generate(args),
        Command::Chat(args) => run::chat(args),
        Command::Inspect(args) => inspect::inspect(args),
        Command::Bench(args) => bench::bench(args),
        Command::ReplicaChat(args) => replica::chat(args),
        Command::ReplicaBench(args) => replica::bench(args),
        Command::Replica(args) => serve::run(args),
    }
}
