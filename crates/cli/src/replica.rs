//! `replica-chat` and `replica-bench`: the canister suite as users deploy
//! it, in the project's local replica (real canister wasm under the IC
//! System API): the task manager, one worker per stage and pipeline, the
//! model uploaded chunk by chunk and pulled by the workers, generation one
//! token per message.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use candid::Principal;
use clap::Args;
use local_replica::LocalReplica;
use suite::{LocalTransport, Suite, TaskManager, Wasms};
use task_manager_api::{
    ChatMessage, ConfigUpdate, GenerateRequest, InitArgs, JobInfo, Prompt, Quota, Role, Sampling,
};
use worker_api::status::WorkerStatus;

use crate::options::{parse_seed, ConversationArgs, ModelArgs, SamplingArgs};
use crate::progress::ProgressBar;

/// The suite's deployment flags.
#[derive(Args, Debug, Clone)]
pub struct DeployArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Pipelines (replicas) of the model: each takes one worker per stage.
    #[arg(long, default_value_t = 1)]
    pipelines: u32,
    /// Where `scripts/build_canisters.sh` put the canisters' wasm
    /// (default: $CARGO_TARGET_DIR/canisters or target/canisters).
    #[arg(long)]
    wasm_dir: Option<PathBuf>,
    /// Accept modules whose code section has up to this many MiB (default:
    /// the IC's 10 MiB). Only to measure modules a real subnet would
    /// refuse.
    #[arg(long)]
    code_section_limit_mib: Option<u64>,
}

#[derive(Args)]
pub struct ChatArgs {
    #[command(flatten)]
    deploy: DeployArgs,
    #[command(flatten)]
    sampling: SamplingArgs,
    #[command(flatten)]
    conversation: ConversationArgs,
}

#[derive(Args)]
pub struct BenchArgs {
    #[command(flatten)]
    deploy: DeployArgs,
    /// Tokens to generate.
    #[arg(long, default_value_t = 16)]
    tokens: u32,
    /// The question (a chat message).
    #[arg(
        long,
        default_value = "What is the capital of France? Answer in one sentence."
    )]
    question: String,
    /// Also write the figures as JSON to this file (for scripts, e.g.
    /// `scripts/scaling.sh`).
    #[arg(long)]
    json: Option<PathBuf>,
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| PathBuf::from("target"), PathBuf::from)
}

/// The user the command chats as.
fn local_user() -> Principal {
    Principal::from_slice(&[0x10, 0xca, 0x1u8, 0x5e])
}

/// A suite with `dir`'s model uploaded and deployed.
struct Deployed {
    suite: Suite,
    model: String,
    stages: usize,
    workers: Vec<Principal>,
    upload_secs: f64,
    upload_bytes: u64,
    deploy_secs: f64,
}

fn deploy(args: &DeployArgs) -> Result<Deployed> {
    let dir = args.model.resolve()?;
    let manifest = suite::read_model_file(&dir, "manifest.json")?;
    let manifest = engine::Manifest::from_json(&manifest)?;
    let wasm_dir = args
        .wasm_dir
        .clone()
        .unwrap_or_else(|| target_dir().join("canisters"));
    let wasms = Wasms::read(&wasm_dir)
        .context("the canisters' wasm (scripts/build_canisters.sh builds them)")?;
    let mut config = local_replica::Config {
        cache_dir: Some(target_dir().join("replica-cache")),
        ..Default::default()
    };
    if let Some(mib) = args.code_section_limit_mib {
        config.limits.module.max_code_section_bytes = mib << 20;
    }
    eprintln!("local replica: installing the task manager");
    let ic = LocalReplica::with_config(config)?;
    let quota = Quota {
        capacity: 100_000,
        refill_per_sec: 100,
    };
    let mut suite = Suite::install(
        ic,
        wasms,
        InitArgs {
            default_quota: Some(quota),
            // The one local user starts with a full bucket.
            config: Some(ConfigUpdate {
                new_user_tokens: Some(quota.capacity),
                ..Default::default()
            }),
        },
    )?;
    let n = manifest.stages.len() * args.pipelines as usize;
    eprintln!(
        "local replica: {n} worker(s) for {} stage(s) × {} pipeline(s)",
        manifest.stages.len(),
        args.pipelines
    );
    let workers = suite.add_workers(n)?;

    let started = Instant::now();
    let mut bar = ProgressBar::new("upload");
    let info = suite.upload_model(&dir, &mut |p| bar.show(p))?;
    bar.finish();
    let upload_secs = started.elapsed().as_secs_f64();

    eprintln!(
        "deploying {}: the workers pull their stages and load them onto the engine's own llama pass (f32 or int8)",
        info.name
    );
    let started = Instant::now();
    let pipelines = suite.deploy(&info.name, args.pipelines)?;
    if !pipelines.iter().all(|p| p.healthy) {
        bail!("the workers did not load the model:\n{}", suite.diagnosis());
    }
    let deploy_secs = started.elapsed().as_secs_f64();
    eprintln!("deployed in {deploy_secs:.1} s");
    Ok(Deployed {
        suite,
        model: info.name,
        stages: manifest.stages.len(),
        workers,
        upload_secs,
        upload_bytes: bar.bytes,
        deploy_secs,
    })
}

pub(crate) fn sampling(
    args: &SamplingArgs,
) -> Result<(Sampling, Vec<String>, serde_bytes::ByteBuf)> {
    let s = Sampling {
        temperature: Some(args.temperature),
        top_k: Some(args.top_k as u32),
        top_p: Some(args.top_p),
        repetition_penalty: Some(args.repetition_penalty),
    };
    Ok((
        s,
        args.stop_sequences.clone(),
        serde_bytes::ByteBuf::from(parse_seed(&args.seed)?.to_vec()),
    ))
}

/// Generates and streams the job's text to stdout as the job advances
/// (the replica runs a round between two polls).
fn run_job(suite: &mut Suite, request: &GenerateRequest) -> Result<JobInfo> {
    let task_manager = suite.task_manager;
    let transport = LocalTransport::new(&mut suite.ic, local_user());
    let tm = TaskManager::new(&transport, task_manager);
    let job = tm.generate(request)?;
    stream_to_stdout(&tm, job, Duration::ZERO)
}

/// Polls `job` until it ends, printing its text as it arrives.
pub(crate) fn stream_to_stdout(tm: &TaskManager<'_>, job: u64, poll: Duration) -> Result<JobInfo> {
    let mut out = std::io::stdout();
    let mut failed_write = None;
    let info = tm.stream_job(job, poll, &mut |text| {
        if let Err(e) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
            failed_write.get_or_insert(e);
        }
    });
    println!();
    if let Some(e) = failed_write {
        return Err(e.into());
    }
    Ok(info?)
}

pub fn chat(args: ChatArgs) -> Result<()> {
    let mut d = deploy(&args.deploy)?;
    d.suite.register(local_user())?;
    let (sampling, stops, seed) = sampling(&args.sampling)?;
    let mut history: Vec<ChatMessage> = args
        .conversation
        .system
        .iter()
        .map(|s| ChatMessage {
            role: Role::System,
            content: s.clone(),
        })
        .collect();
    args.conversation.converse(|message| {
        history.push(ChatMessage {
            role: Role::User,
            content: message,
        });
        let request = GenerateRequest {
            model: d.model.clone(),
            prompt: Prompt::Chat(history.clone()),
            max_new_tokens: args.sampling.max_new_tokens as u32,
            sampling: sampling.clone(),
            stop_sequences: stops.clone(),
            seed: Some(seed.clone()),
        };
        print!("assistant> ");
        let started = Instant::now();
        let info = run_job(&mut d.suite, &request)?;
        report_job(&info, started.elapsed().as_secs_f64());
        history.push(ChatMessage {
            role: Role::Assistant,
            content: info.text,
        });
        Ok(())
    })
}

pub(crate) fn report_job(info: &JobInfo, secs: f64) {
    if let Some(i) = info.instructions {
        eprintln!(
            "[{} prompt + {} generated tokens in {:.1} s; {} instructions per generated token in the canisters]",
            info.prompt_tokens,
            info.generated_tokens,
            secs,
            i.decode.checked_div(u64::from(i.decode_messages)).unwrap_or(0)
        );
    }
}

/// The per-message instruction limit of an update.
const MESSAGE_LIMIT: u64 = 40_000_000_000;

fn nat_f64(n: &candid::Nat) -> f64 {
    n.0.to_string().parse().unwrap_or(f64::NAN)
}

pub fn bench(args: BenchArgs) -> Result<()> {
    let mut d = deploy(&args.deploy)?;
    let user = local_user();
    d.suite.register(user)?;
    let mut load = Vec::new();
    for &w in &d.workers {
        let s: WorkerStatus = d
            .suite
            .ic
            .query_one(w, suite::controller(), "status", &())?;
        load.push(s);
    }
    let request = GenerateRequest {
        model: d.model.clone(),
        prompt: Prompt::Chat(vec![ChatMessage {
            role: Role::User,
            content: args.question.clone(),
        }]),
        max_new_tokens: args.tokens,
        sampling: Sampling::default(),
        stop_sequences: vec![],
        seed: Some(serde_bytes::ByteBuf::from(vec![0; 32])),
    };
    let mut canisters = vec![d.suite.task_manager];
    canisters.extend(&d.workers);
    let balance = |s: &Suite| -> u128 {
        canisters
            .iter()
            .filter_map(|c| s.ic.cycle_balance(*c))
            .sum()
    };
    let before = balance(&d.suite);
    let first_record = d.suite.ic.executions().len();
    let started = Instant::now();
    let info = run_job(&mut d.suite, &request)?;
    let secs = started.elapsed().as_secs_f64();
    let spent = before.saturating_sub(balance(&d.suite));
    // What the workers' decode messages were charged (one token per
    // message on the driver; the peers' forward messages with it).
    let worker_cycles: u128 = d.suite.ic.executions()[first_record..]
        .iter()
        .filter(|r| d.workers.contains(&r.canister))
        .map(|r| r.cycles)
        .sum();
    let i = info
        .instructions
        .context("the job reported no instructions")?;
    let per_token = i
        .decode
        .checked_div(u64::from(i.decode_messages))
        .unwrap_or(0);
    let per_prompt_token = i
        .prefill
        .checked_div(u64::from(i.prefill_tokens))
        .unwrap_or(0);
    let tokens = u128::from(info.generated_tokens.max(1));
    println!(
        "model: {} ({} stage(s), {} worker(s))",
        d.model,
        d.stages,
        d.workers.len()
    );
    println!(
        "upload: {:.1} MB in {:.1} s = {:.1} MB/s (ingress to the task manager, chunks hashed and stored in stable memory)",
        d.upload_bytes as f64 / 1e6,
        d.upload_secs,
        d.upload_bytes as f64 / 1e6 / d.upload_secs.max(1e-9)
    );
    println!("deploy (pull + verify + load): {:.1} s", d.deploy_secs);
    for s in &load {
        println!(
            "load stage(s) {:?}: {} instructions in {} messages, at most {} in one message",
            s.stages, s.load_instructions, s.load_messages, s.load_max_message
        );
    }
    println!(
        "prefill: {} prompt tokens in {} message(s), {} instructions = {} per prompt token",
        i.prefill_tokens, i.prefill_messages, i.prefill, per_prompt_token
    );
    println!(
        "decode: {} tokens, {} instructions = {} per generated token (all stages), at most {} in one message",
        i.decode_messages, i.decode, per_token, i.max_message
    );
    println!(
        "tokens that would fit in one {}-billion-instruction message: {}",
        MESSAGE_LIMIT / 1_000_000_000,
        MESSAGE_LIMIT.checked_div(per_token).unwrap_or(0)
    );
    let fees = local_replica::FeeSchedule::default();
    let decode_cycles = fees.execution_cost(per_token) * d.stages as u128;
    println!(
        "cycles per generated token (13-node application subnet: 1 cycle per instruction + 5 M per update message, per stage): {} (~${:.6} at 1 XDR = 1T cycles = $1.35)",
        decode_cycles,
        decode_cycles as f64 / 1e12 * 1.35
    );
    println!(
        "cycles the canisters spent on the job, per generated token (prefill, decode, calls, ingress and storage included): {} ({} in all; the workers' executions {})",
        spent / tokens,
        spent,
        worker_cycles
    );
    for &w in &d.workers {
        let status = d.suite.ic.canister_status(suite::controller(), w)?;
        println!(
            "worker {w}: peak heap {:.1} MiB, memory {:.1} MiB, module {:.2} MiB",
            d.suite.ic.heap_size(w).unwrap_or(0) as f64 / (1 << 20) as f64,
            nat_f64(&status.memory_size) / (1 << 20) as f64,
            nat_f64(&status.memory_metrics.wasm_binary_size) / (1 << 20) as f64,
        );
    }
    println!(
        "wall time in this replica: {:.1} s for {} tokens ({:.2} tokens/s; a measure of this machine, not of the IC)",
        secs,
        info.generated_tokens,
        f64::from(info.generated_tokens) / secs.max(1e-9)
    );
    if let Some(path) = &args.json {
        let figures = serde_json::json!({
            "model": d.model,
            "stages": d.stages,
            "upload_bytes": d.upload_bytes,
            "load_instructions": load.iter().map(|s| s.load_instructions).collect::<Vec<_>>(),
            "load_max_message": load.iter().map(|s| s.load_max_message).collect::<Vec<_>>(),
            "prompt_tokens": i.prefill_tokens,
            "prefill_instructions_per_token": per_prompt_token,
            "generated_tokens": i.decode_messages,
            "decode_instructions_per_token": per_token,
            "max_message_instructions": i.max_message,
            "peak_heap_bytes": d.workers.iter().map(|w| d.suite.ic.heap_size(*w).unwrap_or(0)).collect::<Vec<_>>(),
        });
        std::fs::write(path, serde_json::to_vec_pretty(&figures)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
