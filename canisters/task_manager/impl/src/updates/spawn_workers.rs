use candid::{CandidType, Deserialize, Principal};
use ic_cdk::call::Call;
use ic_cdk::update;

use crate::guards::small_arg;
use serde_bytes::ByteBuf;
use task_manager_api::spawn_workers::Args;
use task_manager_api::{AdminError, Error, WorkerInfo};

use crate::env::{CanisterEnv, Environment};
use crate::model::users::authorize_controller;
use crate::model::{spawn, workers};
use crate::state::{mutate_state, read_state};

// The management canister's arguments, as far as they are used here.
#[derive(CandidType)]
struct Settings {
    controllers: Option<Vec<Principal>>,
}

#[derive(CandidType)]
struct CreateCanisterArgs {
    settings: Option<Settings>,
}

#[derive(CandidType, Deserialize)]
struct CanisterIdRecord {
    canister_id: Principal,
}

#[derive(CandidType)]
struct UploadChunkArgs {
    canister_id: Principal,
    chunk: ByteBuf,
}

#[derive(CandidType, Deserialize, Clone)]
struct ChunkHash {
    hash: ByteBuf,
}

#[derive(CandidType, Deserialize)]
enum InstallMode {
    #[serde(rename = "install")]
    Install,
}

#[derive(CandidType)]
struct InstallChunkedCodeArgs {
    mode: InstallMode,
    target_canister: Principal,
    store_canister: Option<Principal>,
    chunk_hashes_list: Vec<ChunkHash>,
    wasm_module_hash: ByteBuf,
    arg: ByteBuf,
}

async fn management<R: CandidType + for<'de> Deserialize<'de>>(
    method: &str,
    arg: &impl CandidType,
    cycles: u128,
) -> Result<R, Error> {
    let failed = |reason: String| Error::ManagementCallFailed {
        reason: format!("{method}: {reason}"),
    };
    Call::unbounded_wait(Principal::management_canister(), method)
        .with_arg(arg)
        .with_cycles(cycles)
        .await
        .map_err(|e| failed(e.to_string()))?
        .candid::<R>()
        .map_err(|e| failed(e.to_string()))
}

/// Creates `count` canisters, installs the uploaded worker module in each
/// (through its chunk store) and adds them. Workers created before a
/// failure stay added; a canister created but not installed is recorded
/// as a failed worker (it holds cycles; `remove_worker` forgets it).
#[update(guard = "small_arg")]
async fn spawn_workers(
    args: task_manager_api::spawn_workers::Args,
) -> task_manager_api::spawn_workers::Response {
    spawn_workers_impl(args)
        .await
        .map_err(AdminError::from)
        .into()
}

async fn spawn_workers_impl(args: Args) -> Result<Vec<WorkerInfo>, Error> {
    let env = CanisterEnv;
    let caller = env.caller();
    let (pieces, module_hash, cycles) = read_state(|s| prepare(s, &env, &args))?;
    let me = env.canister_self();
    let arg = candid::encode_one(Some(worker_api::InitArgs { task_manager: me })).map_err(|e| {
        Error::InvalidRequest {
            reason: e.to_string(),
        }
    })?;
    let mut spawned = Vec::new();
    for _ in 0..args.count {
        let created: CanisterIdRecord = management(
            "create_canister",
            &CreateCanisterArgs {
                settings: Some(Settings {
                    controllers: Some(vec![me, caller]),
                }),
            },
            cycles,
        )
        .await?;
        let id = created.canister_id;
        if let Err(e) = install(id, &pieces, module_hash, &arg).await {
            let now = ic_cdk::api::time();
            mutate_state(|s| {
                workers::add_worker(s, id, true, now)?;
                workers::mark_failed(s, id, format!("spawned but not installed: {e}"));
                Ok::<_, Error>(())
            })?;
            return Err(e);
        }
        let now = ic_cdk::api::time();
        spawned.push(mutate_state(|s| workers::add_worker(s, id, true, now))?);
    }
    Ok(spawned)
}

/// Installs the worker module in a new canister through its chunk store.
async fn install(
    id: Principal,
    pieces: &[Vec<u8>],
    module_hash: [u8; 32],
    arg: &[u8],
) -> Result<(), Error> {
    let mut hashes = Vec::with_capacity(pieces.len());
    for piece in pieces {
        let hash: ChunkHash = management(
            "upload_chunk",
            &UploadChunkArgs {
                canister_id: id,
                chunk: ByteBuf::from(piece.clone()),
            },
            0,
        )
        .await?;
        hashes.push(hash);
    }
    let () = management(
        "install_chunked_code",
        &InstallChunkedCodeArgs {
            mode: InstallMode::Install,
            target_canister: id,
            store_canister: None,
            chunk_hashes_list: hashes,
            wasm_module_hash: ByteBuf::from(module_hash.to_vec()),
            arg: ByteBuf::from(arg.to_vec()),
        },
        0,
    )
    .await?;
    management(
        "clear_chunk_store",
        &CanisterIdRecord { canister_id: id },
        0,
    )
    .await
}

/// The module's pieces, its hash, and the cycles each new canister gets.
type Prepared = (Vec<Vec<u8>>, [u8; 32], u128);

/// Checks the request; the module's pieces and hash.
fn prepare(
    state: &crate::state::State,
    env: &impl Environment,
    args: &Args,
) -> Result<Prepared, Error> {
    authorize_controller(env)?;
    if args.count == 0 || args.count > spawn::MAX_SPAWN {
        return Err(Error::InvalidRequest {
            reason: format!(
                "count must be 1 to {}, found {}",
                spawn::MAX_SPAWN,
                args.count
            ),
        });
    }
    let pieces = spawn::pieces(state);
    if pieces.is_empty() {
        return Err(Error::NoWorkerWasm);
    }
    let cycles = u128::try_from(&args.cycles_per_worker.0).map_err(|_| Error::InvalidRequest {
        reason: format!("cycles_per_worker {} is too large", args.cycles_per_worker),
    })?;
    Ok((pieces, spawn::module_hash(state), cycles))
}
