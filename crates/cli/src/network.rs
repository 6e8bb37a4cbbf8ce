//! The commands on a network (`--network ic|URL`): the same task manager
//! calls as in the embedded replica (the `suite` crate's [`TaskManager`]
//! and uploader), made through `ic-agent` as the `--identity` PEM's
//! principal.
//!
//! The task manager's id comes from `--canister task_manager=ID` or from
//! the project's icp-cli or dfx state ([`client::canister_ids`]).

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use candid::Principal;
use clap::Args;
use client::canister_ids::{self, Lookup};
use client::{AgentTransport, Network};
use suite::{CallErrorKind, SuiteError, TaskManager, UploadOptions};
use task_manager_api::{
    AdminError, ChatMessage, ConfigUpdate, GenerateRequest, InitArgs, JobInfo, JobStatus, Prompt,
    Quota, Role, UserError,
};

use crate::options::{resolve_model_dir, ModelArgs};
use crate::progress::ProgressBar;
use crate::replica::{report_job, sampling, stream_to_stdout};
use crate::run;

/// The options every command takes: where, as whom, which canisters.
#[derive(Args, Debug, Clone)]
pub struct NetworkArgs {
    /// `local` (the replica embedded in this process), `ic` (mainnet,
    /// https://icp-api.io) or a replica's URL (`icllm replica serve`,
    /// `dfx start`: http://127.0.0.1:4943; `icp network start`:
    /// http://localhost:8000). Off mainnet the root key is fetched from the
    /// replica.
    #[arg(long, global = true, default_value = "local", env = "ICLLM_NETWORK")]
    pub network: Network,
    /// A PEM file with the key to sign with, as `dfx identity export NAME`
    /// or `icp identity export NAME` print it (Ed25519, secp256k1, P-256);
    /// the anonymous principal when absent.
    #[arg(long, global = true, value_name = "PEM")]
    pub identity: Option<PathBuf>,
    /// A canister's id, instead of the project's icp-cli or dfx state
    /// (repeatable): `--canister task_manager=bkyz2-fmaaa-aaaaa-qaaaq-cai`.
    #[arg(long = "canister", global = true, value_name = "NAME=ID")]
    pub canisters: Vec<String>,
    /// The icp-cli environment or dfx network whose state files hold the
    /// canister ids (default: `ic` on mainnet, `local` for a replica on
    /// this machine).
    #[arg(long, short = 'e', global = true, env = "ICP_ENVIRONMENT")]
    pub environment: Option<String>,
}

/// A connection to the task manager on a network.
pub struct Session {
    pub transport: AgentTransport,
    pub task_manager: Principal,
}

impl NetworkArgs {
    pub fn is_local(&self) -> bool {
        self.network == Network::Local
    }

    /// Where the canister ids are looked up.
    pub fn lookup(&self, cwd: &Path) -> Result<Lookup> {
        let mut explicit = std::collections::BTreeMap::new();
        for flag in &self.canisters {
            let (name, id) = canister_ids::parse_flag(flag)?;
            explicit.insert(name, id);
        }
        Ok(Lookup {
            explicit,
            project: canister_ids::find_project_root(cwd),
            environments: match &self.environment {
                Some(e) => vec![e.clone()],
                None => self.network.default_environments(),
            },
        })
    }

    /// Connects to the network's task manager as the `--identity`.
    pub fn connect(&self, command: &str) -> Result<Session> {
        let (transport, identity) = self.transport(command)?;
        let cwd = std::env::current_dir().context("the current directory")?;
        let task_manager = self.lookup(&cwd)?.resolve("task_manager")?;
        match &identity {
            Some(id) => eprintln!(
                "{}: task manager {task_manager} as {} ({})",
                transport.url(),
                id.principal,
                id.kind
            ),
            None => eprintln!(
                "{}: task manager {task_manager} as the anonymous principal (no --identity)",
                transport.url()
            ),
        }
        Ok(Session {
            transport,
            task_manager,
        })
    }

    /// An agent on the network, signing with `--identity` (returned too).
    fn transport(
        &self,
        command: &str,
    ) -> Result<(AgentTransport, Option<client::identity::PemIdentity>)> {
        if self.is_local() {
            bail!(
                "`icllm {command}` talks to a replica that keeps its state between commands, and \
                 the embedded one (`--network local`) lives only as long as one command: run \
                 `icllm replica-chat` to deploy and chat in one go, or serve the replica \
                 (`icllm replica serve --port 4943 --state-dir DIR`) and pass \
                 `--network http://127.0.0.1:4943`"
            );
        }
        let identity = match &self.identity {
            Some(path) => Some(
                client::identity::from_pem_file(path)
                    .with_context(|| format!("--identity {}", path.display()))?,
            ),
            None => None,
        };
        let transport = AgentTransport::connect(&self.network, identity.as_ref())?;
        Ok((transport, identity))
    }
}

#[derive(Args, Debug)]
pub struct InstallTaskManagerArgs {
    /// The task manager module (default: $CARGO_TARGET_DIR/canisters/task_manager.wasm,
    /// as scripts/build_canisters.sh writes it).
    #[arg(long)]
    wasm: Option<PathBuf>,
    /// Cycles the canister is created with; `spawn-workers` pays each
    /// worker from them (`100T`, `500G` or a number).
    #[arg(long, default_value = "100T", value_parser = parse_cycles)]
    cycles: u128,
    /// The default bucket of users: capacity in tokens (new users start
    /// full).
    #[arg(long, default_value_t = 10_000)]
    user_tokens: u64,
    /// The default bucket's refill, tokens per second.
    #[arg(long, default_value_t = 5)]
    refill_per_sec: u64,
}

/// `install-task-manager`: creates a canister with cycles and installs the
/// task manager in it, the caller its controller; its id. This uses the
/// provisional API that local replicas offer (`icllm replica serve`,
/// `dfx start`); on mainnet deploy with `icp deploy` or `dfx deploy`.
pub fn install_task_manager(net: &NetworkArgs, args: InstallTaskManagerArgs) -> Result<Principal> {
    if net.identity.is_none() {
        bail!(
            "the task manager's controller would be the anonymous principal: pass --identity PEM \
             (`icp identity export NAME > me.pem` or `dfx identity export NAME > me.pem`)"
        );
    }
    let (_, module) = read_module(args.wasm, "task_manager")?;
    let (transport, _) = net.transport("install-task-manager")?;
    let quota = Quota {
        capacity: args.user_tokens,
        refill_per_sec: args.refill_per_sec,
    };
    let init = InitArgs {
        default_quota: Some(quota),
        config: Some(ConfigUpdate {
            new_user_tokens: Some(quota.capacity),
            ..Default::default()
        }),
    };
    let arg = candid::encode_one(Some(init)).context("encoding the init argument")?;
    let id = transport
        .create_and_install(&module, arg, args.cycles)
        .with_context(|| {
            format!(
                "creating and installing the task manager on {} (a local replica's provisional \
                 API; on mainnet use `icp deploy` or `dfx deploy`)",
                transport.url()
            )
        })?;
    println!("task manager {id}: pass --canister task_manager={id} to the other commands");
    Ok(id)
}

impl Session {
    pub fn task_manager(&self) -> TaskManager<'_> {
        TaskManager::new(&self.transport, self.task_manager)
    }

    /// `e` with a hint when the caller's identity is the likely cause.
    fn explain(&self, e: SuiteError) -> anyhow::Error {
        let hint = match &e {
            SuiteError::Admin(AdminError::NotController) => Some(format!(
                "{} is not a controller of the task manager: pass --identity with the PEM of \
                 the identity that deployed it",
                suite::Transport::caller(&self.transport)
            )),
            SuiteError::User(UserError::AnonymousCaller)
            | SuiteError::Admin(AdminError::AnonymousCaller) => Some(
                "the anonymous principal cannot do this: pass --identity PEM \
                 (`icp identity export NAME > me.pem` or `dfx identity export NAME > me.pem`)"
                    .to_string(),
            ),
            SuiteError::Call { source, .. } if source.kind == CallErrorKind::Rejected => {
                Some(format!(
                    "the task manager refused the call as {} (its inspect_message refuses admin \
                 calls from non-controllers and ingress from anonymous, unregistered or banned \
                 callers): check --identity",
                    suite::Transport::caller(&self.transport)
                ))
            }
            _ => None,
        };
        match hint {
            Some(h) => anyhow::Error::new(e).context(h),
            None => e.into(),
        }
    }
}

/// The model's name in the registry: the manifest's, when `--model` is a
/// model directory; else `--model` itself (a name such as `tiny-llama`).
fn model_name(args: &ModelArgs) -> Result<String> {
    match resolve_model_dir(&args.model, args.stages) {
        Ok(dir) => {
            let bytes = suite::read_model_file(&dir, "manifest.json")?;
            Ok(engine::Manifest::from_json(&bytes)?.name)
        }
        Err(e) => {
            let text = args.model.to_string_lossy();
            if args.stages.is_none() && !text.contains(['/', '\\']) && !text.is_empty() {
                Ok(text.into_owned())
            } else {
                Err(e)
            }
        }
    }
}

#[derive(Args, Debug)]
pub struct UploadArgs {
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    upload: UploadFlags,
}

#[derive(Args, Debug, Clone, Copy)]
pub struct UploadFlags {
    /// `upload_chunk` calls in flight at once.
    #[arg(long, default_value_t = 8)]
    parallel: usize,
    /// Tries per call (the first included) before a transient failure
    /// (network, timeout, overload) stops the upload.
    #[arg(long, default_value_t = 8)]
    attempts: u32,
}

impl UploadFlags {
    fn options(&self) -> Result<UploadOptions> {
        if self.parallel == 0 || self.parallel > 64 {
            bail!("--parallel must be in 1..=64, found {}", self.parallel);
        }
        Ok(UploadOptions {
            parallel: self.parallel,
            attempts: self.attempts.max(1),
            ..Default::default()
        })
    }
}

/// `upload`: registers the model and sends the chunks the registry lacks.
pub fn upload(net: &NetworkArgs, args: UploadArgs) -> Result<()> {
    let dir = args.model.resolve()?;
    let options = args.upload.options()?;
    let session = net.connect("upload")?;
    let tm = session.task_manager();
    let bar = Mutex::new(ProgressBar::new("upload"));
    let started = Instant::now();
    let report = suite::upload::upload_model(&tm, &dir, &options, &|p| {
        bar.lock().unwrap_or_else(|p| p.into_inner()).show(p)
    });
    bar.lock().unwrap_or_else(|p| p.into_inner()).finish();
    let report = report.map_err(|e| session.explain(e))?;
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "{}: {} chunk(s) uploaded ({:.1} MiB in {:.1} s, {:.2} MiB/s, {} retried call(s)), {} already present; {}/{} chunks",
        report.info.name,
        report.uploaded,
        report.bytes as f64 / f64::from(1 << 20),
        secs,
        report.bytes as f64 / f64::from(1 << 20) / secs.max(1e-9),
        report.retries,
        report.skipped,
        report.info.chunks_present,
        report.info.chunks_total
    );
    Ok(())
}

#[derive(Args, Debug)]
pub struct UploadWorkerArgs {
    /// The worker module (default: $CARGO_TARGET_DIR/canisters/worker.wasm,
    /// as scripts/build_canisters.sh writes it). Plain wasm is
    /// gzip-compressed before it is sent.
    #[arg(long)]
    wasm: Option<PathBuf>,
    /// Tries per call before a transient failure stops the upload.
    #[arg(long, default_value_t = 8)]
    attempts: u32,
}

/// A canister module: `wasm` when given, else
/// `$CARGO_TARGET_DIR/canisters/<name>.wasm` as scripts/build_canisters.sh
/// writes it; its path and bytes.
fn read_module(wasm: Option<PathBuf>, name: &str) -> Result<(PathBuf, Vec<u8>)> {
    let path = wasm.unwrap_or_else(|| {
        std::env::var_os("CARGO_TARGET_DIR")
            .map_or_else(|| PathBuf::from("target"), PathBuf::from)
            .join(format!("canisters/{name}.wasm"))
    });
    let module = std::fs::read(&path).with_context(|| {
        format!(
            "reading {} (scripts/build_canisters.sh {name} builds it)",
            path.display()
        )
    })?;
    Ok((path, module))
}

/// `upload-worker`: the module `spawn_workers` installs.
pub fn upload_worker(net: &NetworkArgs, args: UploadWorkerArgs) -> Result<()> {
    let (path, module) = read_module(args.wasm, "worker")?;
    let session = net.connect("upload-worker")?;
    let tm = session.task_manager();
    let options = UploadOptions {
        attempts: args.attempts.max(1),
        ..Default::default()
    };
    let info = suite::upload::upload_worker_wasm(&tm, &module, &options, &mut |sent, total| {
        eprintln!("upload_worker_wasm: {sent}/{total} bytes")
    })
    .map_err(|e| session.explain(e))?;
    println!(
        "worker module: {} bytes, sha256 {} (from {}); now spawn-workers",
        info.size,
        info.sha256,
        path.display()
    );
    Ok(())
}

#[derive(Args, Debug)]
pub struct SpawnWorkersArgs {
    /// How many workers to create (1 to 16 per call).
    #[arg(long, default_value_t = 1)]
    count: u32,
    /// Cycles each new worker starts with, taken from the task manager's
    /// balance (`2T`, `500G` or a number).
    #[arg(long, default_value = "2T", value_parser = parse_cycles)]
    cycles_per_worker: u128,
}

/// `2T` → 2·10¹², `500G` → 5·10¹¹, `123` → 123.
pub fn parse_cycles(text: &str) -> std::result::Result<u128, String> {
    let t = text.trim().replace('_', "");
    let (digits, scale) = match t.char_indices().last() {
        Some((i, 'T' | 't')) => (&t[..i], 1_000_000_000_000u128),
        Some((i, 'G' | 'g')) => (&t[..i], 1_000_000_000),
        Some((i, 'M' | 'm')) => (&t[..i], 1_000_000),
        _ => (t.as_str(), 1),
    };
    let n: u128 = digits
        .parse()
        .map_err(|_| format!("expected cycles such as 2T, 500G or 1000000, found {text:?}"))?;
    n.checked_mul(scale)
        .ok_or_else(|| format!("{text:?} is too many cycles"))
}

/// `spawn-workers`: the task manager creates and installs workers.
pub fn spawn_workers(net: &NetworkArgs, args: SpawnWorkersArgs) -> Result<()> {
    let session = net.connect("spawn-workers")?;
    let workers = session
        .task_manager()
        .spawn_workers(args.count, args.cycles_per_worker)
        .map_err(|e| session.explain(e))?;
    for w in workers {
        println!("worker {} ({:?})", w.worker, w.state);
    }
    Ok(())
}

#[derive(Args, Debug)]
pub struct AddWorkerArgs {
    /// Worker canisters (installed with the worker module, their
    /// `task_manager` init argument this task manager).
    #[arg(required = true)]
    workers: Vec<Principal>,
}

/// `add-worker`: registers existing worker canisters.
pub fn add_worker(net: &NetworkArgs, args: AddWorkerArgs) -> Result<()> {
    let session = net.connect("add-worker")?;
    let tm = session.task_manager();
    for w in args.workers {
        let info = tm.add_worker(w).map_err(|e| session.explain(e))?;
        println!("worker {} ({:?})", info.worker, info.state);
    }
    Ok(())
}

#[derive(Args, Debug)]
pub struct DeployArgs {
    /// The model: its directory (the manifest's name is used) or its name
    /// in the registry.
    #[arg(long, short, default_value = "models/smollm2-135m-instruct")]
    model: PathBuf,
    /// With a model root: the `stages-N` cut whose manifest names it.
    #[arg(long)]
    stages: Option<usize>,
    /// Pipelines (replicas) of the model: each takes one idle worker per
    /// stage.
    #[arg(long, default_value_t = 1)]
    pipelines: u32,
    /// How long to wait for the workers to load their stages.
    #[arg(long, default_value_t = 900)]
    timeout_secs: u64,
}

/// `deploy`: places the model on idle workers and waits until they have
/// loaded it.
pub fn deploy(net: &NetworkArgs, args: DeployArgs) -> Result<()> {
    let model = model_name(&ModelArgs {
        model: args.model.clone(),
        stages: args.stages,
    })?;
    let session = net.connect("deploy")?;
    let tm = session.task_manager();
    let started = Instant::now();
    tm.deploy_model(&model, args.pipelines)
        .map_err(|e| session.explain(e))?;
    eprintln!("deploying {model}: the workers pull their stages and load them");
    let pipelines = tm
        .wait_deployed(
            &model,
            Duration::from_secs(2),
            Duration::from_secs(args.timeout_secs),
        )
        .map_err(|e| session.explain(e))?;
    for p in pipelines {
        println!(
            "pipeline {}: {} on {}",
            p.id,
            p.model,
            p.workers
                .iter()
                .map(Principal::to_text)
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    eprintln!("deployed in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// `register`: the caller becomes a user (under the task manager's
/// registration policy).
pub fn register(net: &NetworkArgs) -> Result<()> {
    let session = net.connect("register")?;
    let profile = session
        .task_manager()
        .register()
        .map_err(|e| session.explain(e))?;
    println!(
        "registered {}: {} tokens available (bucket of {}, refilling {}/s)",
        profile.principal,
        profile.tokens_available,
        profile.quota.capacity,
        profile.quota.refill_per_sec
    );
    Ok(())
}

/// How often `job` is polled while text streams.
const POLL: Duration = Duration::from_millis(300);

/// Registers the caller unless it is a user already (`inspect_message`
/// refuses a `generate` from a non-user before it runs, so the typed
/// `NotRegistered` comes only from the `whoami` query).
fn ensure_registered(session: &Session) -> Result<()> {
    let tm = session.task_manager();
    match tm.whoami() {
        Ok(_) => Ok(()),
        Err(SuiteError::User(UserError::NotRegistered)) => {
            let profile = tm.register().map_err(|e| session.explain(e))?;
            eprintln!(
                "registered {} ({} tokens available)",
                profile.principal, profile.tokens_available
            );
            Ok(())
        }
        Err(e) => Err(session.explain(e)),
    }
}

/// Starts a job and prints its text as it streams.
fn run_job(session: &Session, request: &GenerateRequest) -> Result<JobInfo> {
    let tm = session.task_manager();
    let job = tm.generate(request).map_err(|e| session.explain(e))?;
    stream_to_stdout(&tm, job, POLL)
}

/// `chat --network …`: a conversation through the task manager (the
/// caller is registered first if it is not a user yet).
pub fn chat(net: &NetworkArgs, args: run::ChatArgs) -> Result<()> {
    let model = model_name(&args.model)?;
    let session = net.connect("chat")?;
    ensure_registered(&session)?;
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
            model: model.clone(),
            prompt: Prompt::Chat(history.clone()),
            max_new_tokens: args.sampling.max_new_tokens as u32,
            sampling: sampling.clone(),
            stop_sequences: stops.clone(),
            seed: Some(seed.clone()),
        };
        print!("assistant> ");
        let started = Instant::now();
        let info = run_job(&session, &request)?;
        report_job(&info, started.elapsed().as_secs_f64());
        history.push(ChatMessage {
            role: Role::Assistant,
            content: info.text,
        });
        Ok(())
    })
}

/// `generate --network …`: one prompt through the task manager.
pub fn generate(net: &NetworkArgs, args: run::GenerateArgs) -> Result<()> {
    let model = model_name(&args.model)?;
    let prompt = match (&args.prompt, &args.chat) {
        (Some(text), None) => Prompt::Text(text.clone()),
        (None, Some(message)) => {
            let mut messages: Vec<ChatMessage> = args
                .system
                .iter()
                .map(|s| ChatMessage {
                    role: Role::System,
                    content: s.clone(),
                })
                .collect();
            messages.push(ChatMessage {
                role: Role::User,
                content: message.clone(),
            });
            Prompt::Chat(messages)
        }
        _ => bail!("give --prompt TEXT or --chat MESSAGE"),
    };
    let session = net.connect("generate")?;
    ensure_registered(&session)?;
    let (sampling, stops, seed) = sampling(&args.sampling)?;
    let request = GenerateRequest {
        model,
        prompt,
        max_new_tokens: args.sampling.max_new_tokens as u32,
        sampling,
        stop_sequences: stops,
        seed: Some(seed),
    };
    if let Some(text) = &args.prompt {
        print!("{text}");
    }
    let started = Instant::now();
    let info = run_job(&session, &request)?;
    report_job(&info, started.elapsed().as_secs_f64());
    Ok(())
}

#[derive(Args, Debug)]
pub struct SetQuotaArgs {
    /// The bucket's capacity in tokens (also the largest single request:
    /// its prompt's tokens plus `max_new_tokens`).
    #[arg(long)]
    capacity: u64,
    /// Tokens added per second (0: a fixed allowance, refused with
    /// `QuotaExhausted` once spent rather than `RateLimited`).
    #[arg(long)]
    refill_per_sec: u64,
    /// The user whose quota to override; without it, the default quota of
    /// every user without an override.
    #[arg(long)]
    user: Option<Principal>,
}

/// `set-quota`: a user's token bucket (`set_user_quota`) or the default
/// one (`set_default_quota`). Buckets keep their level, capped at the new
/// capacity.
pub fn set_quota(net: &NetworkArgs, args: SetQuotaArgs) -> Result<()> {
    let session = net.connect("set-quota")?;
    let quota = Quota {
        capacity: args.capacity,
        refill_per_sec: args.refill_per_sec,
    };
    match args.user {
        Some(user) => {
            let arg = task_manager_api::set_user_quota::Args {
                user,
                quota: Some(quota),
            };
            admin_update(&session, "set_user_quota", &arg)?;
            println!(
                "{user}: a bucket of {} tokens refilling {}/s",
                quota.capacity, quota.refill_per_sec
            );
        }
        None => {
            admin_update(&session, "set_default_quota", &quota)?;
            println!(
                "default quota: a bucket of {} tokens refilling {}/s",
                quota.capacity, quota.refill_per_sec
            );
        }
    }
    Ok(())
}

/// One controller's update that answers `variant { Ok; Err : AdminError }`.
fn admin_update<A: candid::CandidType>(session: &Session, method: &str, arg: &A) -> Result<()> {
    let bytes = candid::encode_one(arg).with_context(|| format!("encoding {method}'s argument"))?;
    let reply = suite::Transport::update(&session.transport, session.task_manager, method, bytes)
        .map_err(|source| {
        session.explain(SuiteError::Call {
            method: method.to_string(),
            source,
        })
    })?;
    let result: std::result::Result<(), AdminError> =
        candid::decode_one(&reply).with_context(|| format!("{method}'s reply"))?;
    result.map_err(|e| session.explain(SuiteError::Admin(e)))
}

#[derive(Args, Debug)]
pub struct JobsArgs {
    /// How many jobs (newest first, at most 100).
    #[arg(long, default_value_t = 20)]
    count: u32,
    /// Only jobs with ids below this one (the next page).
    #[arg(long)]
    before: Option<u64>,
}

fn status_text(s: &JobStatus) -> String {
    match s {
        JobStatus::Queued => "queued".into(),
        JobStatus::Running => "running".into(),
        JobStatus::Cancelled => "cancelled".into(),
        JobStatus::Failed { reason } => format!("failed: {reason}"),
        JobStatus::Completed { finish_reason } => format!("completed ({finish_reason:?})"),
    }
}

/// `jobs`: the caller's jobs, newest first.
pub fn jobs(net: &NetworkArgs, args: JobsArgs) -> Result<()> {
    let session = net.connect("jobs")?;
    let jobs = session
        .task_manager()
        .my_jobs(
            args.before,
            args.count.min(task_manager_api::my_jobs::MAX_COUNT),
        )
        .map_err(|e| session.explain(e))?;
    if jobs.is_empty() {
        println!("no jobs");
    }
    for j in &jobs {
        let mut preview: String = j.text.chars().take(60).collect();
        if preview.len() < j.text.len() {
            preview.push('…');
        }
        println!(
            "job {} {} [{}] {} prompt + {} generated tokens: {:?}",
            j.id,
            j.model,
            status_text(&j.status),
            j.prompt_tokens,
            j.generated_tokens,
            preview
        );
    }
    if let Some(last) = jobs.last() {
        if jobs.len() as u32 == args.count {
            eprintln!("(more: --before {})", last.id);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cycles_parse_with_suffixes() {
        assert_eq!(parse_cycles("2T"), Ok(2_000_000_000_000));
        assert_eq!(parse_cycles("500G"), Ok(500_000_000_000));
        assert_eq!(parse_cycles("1_000"), Ok(1000));
        assert_eq!(parse_cycles("3m"), Ok(3_000_000));
        assert!(parse_cycles("T").is_err());
        assert!(parse_cycles("2X").is_err());
        assert!(parse_cycles(&format!("{}T", u128::MAX)).is_err());
    }

    #[test]
    fn model_names_come_from_manifests_or_the_flag() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/tiny-llama");
        let dir = |model: PathBuf, stages| ModelArgs { model, stages };
        assert_eq!(
            model_name(&dir(root.clone(), Some(2))).unwrap(),
            "tiny-llama"
        );
        assert_eq!(
            model_name(&dir(root.join("stages-1"), None)).unwrap(),
            "tiny-llama"
        );
        assert_eq!(
            model_name(&dir("smollm2-135m-instruct".into(), None)).unwrap(),
            "smollm2-135m-instruct"
        );
        assert!(model_name(&dir(root.join("nope"), None)).is_err());
        assert!(model_name(&dir("name".into(), Some(2))).is_err());
    }

    #[test]
    fn the_embedded_network_refuses_network_commands_with_a_way_out() {
        let net = NetworkArgs {
            network: Network::Local,
            identity: None,
            canisters: vec![],
            environment: None,
        };
        let err = net.connect("upload").err().unwrap().to_string();
        assert!(err.contains("replica serve"), "{err}");
        assert!(err.contains("replica-chat"), "{err}");
    }
}
