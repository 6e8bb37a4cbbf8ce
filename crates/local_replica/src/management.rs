//! The management canister `aaaaa-aa`: candid types of its interface and
//! the methods the local replica implements.
//!
//! Implemented: `create_canister`, `provisional_create_canister_with_cycles`,
//! `provisional_top_up_canister`, `deposit_cycles`, `install_code`
//! (install / reinstall / upgrade), `upload_chunk`, `clear_chunk_store`,
//! `stored_chunks`, `install_chunked_code`, `uninstall_code`,
//! `start_canister`, `stop_canister`, `delete_canister`, `canister_status`,
//! `update_settings` and `raw_rand`. Every other method is refused with
//! reject code 4 (`CanisterReject`), as the IC refuses unknown methods.

use candid::{CandidType, Deserialize, Nat, Principal};
use sha2::{Digest, Sha256};

use crate::canister::{Canister, CanisterStatus};
use crate::error::{ErrorCode, Reject};
use crate::messaging::Origin;
use crate::replica::LocalReplica;

/// `install_code`'s mode.
#[derive(CandidType, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum CanisterInstallMode {
    #[serde(rename = "install")]
    Install,
    #[serde(rename = "reinstall")]
    Reinstall,
    #[serde(rename = "upgrade")]
    Upgrade(Option<UpgradeFlags>),
}

#[derive(CandidType, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct UpgradeFlags {
    pub skip_pre_upgrade: Option<bool>,
    pub wasm_memory_persistence: Option<WasmMemoryPersistence>,
}

#[derive(CandidType, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum WasmMemoryPersistence {
    #[serde(rename = "keep")]
    Keep,
    #[serde(rename = "replace")]
    Replace,
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum LogVisibility {
    #[serde(rename = "controllers")]
    Controllers,
    #[serde(rename = "public")]
    Public,
    #[serde(rename = "allowed_viewers")]
    AllowedViewers(Vec<Principal>),
}

/// Settings given at creation or by `update_settings` (every field
/// optional; fields this replica does not model are accepted and ignored).
#[derive(CandidType, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct CanisterSettings {
    pub controllers: Option<Vec<Principal>>,
    pub compute_allocation: Option<Nat>,
    pub memory_allocation: Option<Nat>,
    pub freezing_threshold: Option<Nat>,
    pub reserved_cycles_limit: Option<Nat>,
    pub log_visibility: Option<LogVisibility>,
    pub wasm_memory_limit: Option<Nat>,
    pub wasm_memory_threshold: Option<Nat>,
    pub environment_variables: Option<Vec<EnvironmentVariable>>,
}

/// A canister environment variable (`ic0.env_var_*`), set in its settings.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct EnvironmentVariable {
    pub name: String,
    pub value: String,
}

/// Environment variables of one canister (`MAX_ENVIRONMENT_VARIABLES` in
/// `dfinity/ic` `rs/config/src/execution_environment.rs`), and the bytes
/// of a name and of a value.
pub const MAX_ENV_VARS: usize = 20;
pub const MAX_ENV_VAR_NAME_BYTES: usize = 128;
pub const MAX_ENV_VAR_VALUE_BYTES: usize = 128;

#[derive(CandidType, Deserialize, Clone, Debug, Default)]
pub struct CreateCanisterArgs {
    pub settings: Option<CanisterSettings>,
    pub sender_canister_version: Option<u64>,
}

#[derive(CandidType, Deserialize, Clone, Debug, Default)]
pub struct ProvisionalCreateCanisterArgs {
    pub amount: Option<Nat>,
    pub settings: Option<CanisterSettings>,
    pub specified_id: Option<Principal>,
    pub sender_canister_version: Option<u64>,
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct CanisterIdRecord {
    pub canister_id: Principal,
}

#[derive(CandidType, Deserialize, Clone, Debug)]
pub struct ProvisionalTopUpArgs {
    pub canister_id: Principal,
    pub amount: Nat,
}

#[derive(CandidType, Deserialize, Clone, Debug)]
pub struct InstallCodeArgs {
    pub mode: CanisterInstallMode,
    pub canister_id: Principal,
    #[serde(with = "serde_bytes")]
    pub wasm_module: Vec<u8>,
    #[serde(with = "serde_bytes")]
    pub arg: Vec<u8>,
    pub sender_canister_version: Option<u64>,
}

#[derive(CandidType, Deserialize, Clone, Debug)]
pub struct UploadChunkArgs {
    pub canister_id: Principal,
    #[serde(with = "serde_bytes")]
    pub chunk: Vec<u8>,
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ChunkHash {
    #[serde(with = "serde_bytes")]
    pub hash: Vec<u8>,
}

#[derive(CandidType, Deserialize, Clone, Debug)]
pub struct InstallChunkedCodeArgs {
    pub mode: CanisterInstallMode,
    pub target_canister: Principal,
    pub store_canister: Option<Principal>,
    pub chunk_hashes_list: Vec<ChunkHash>,
    #[serde(with = "serde_bytes")]
    pub wasm_module_hash: Vec<u8>,
    #[serde(with = "serde_bytes")]
    pub arg: Vec<u8>,
    pub sender_canister_version: Option<u64>,
}

#[derive(CandidType, Deserialize, Clone, Debug)]
pub struct UpdateSettingsArgs {
    pub canister_id: Principal,
    pub settings: CanisterSettings,
    pub sender_canister_version: Option<u64>,
}

#[derive(CandidType, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum CanisterStatusType {
    #[serde(rename = "running")]
    Running,
    #[serde(rename = "stopping")]
    Stopping,
    #[serde(rename = "stopped")]
    Stopped,
}

/// Who may read a canister's snapshots (reported, not enforced: this
/// replica has no snapshots).
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum SnapshotVisibility {
    #[serde(rename = "controllers")]
    Controllers,
    #[serde(rename = "public")]
    Public,
    #[serde(rename = "allowed_viewers")]
    AllowedViewers(Vec<Principal>),
}

/// Who may call `canister_status` (reported, not enforced: controllers
/// only here).
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum StatusVisibility {
    #[serde(rename = "controllers")]
    Controllers,
    #[serde(rename = "public")]
    Public,
    #[serde(rename = "allowed_viewers")]
    AllowedViewers(Vec<Principal>),
}

/// The settings `canister_status` reports: every field of the current
/// interface (`ic-management-canister-types` 0.9 to 0.11, which icp-cli
/// 1.5 decodes with, require them all; older clients ignore the ones they
/// do not know). `minimum_msg_cycles_available` is the same setting under
/// the name `dfinity/ic`'s interface gives it now.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct DefiniteCanisterSettings {
    pub controllers: Vec<Principal>,
    pub compute_allocation: Nat,
    pub memory_allocation: Nat,
    pub freezing_threshold: Nat,
    pub reserved_cycles_limit: Nat,
    pub log_visibility: LogVisibility,
    pub log_memory_limit: Nat,
    pub snapshot_visibility: SnapshotVisibility,
    pub status_visibility: StatusVisibility,
    pub wasm_memory_limit: Nat,
    pub wasm_memory_threshold: Nat,
    pub environment_variables: Vec<EnvironmentVariable>,
    pub minimum_incoming_canister_call_cycles: Nat,
    pub minimum_msg_cycles_available: Nat,
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct QueryStats {
    pub num_calls_total: Nat,
    pub num_instructions_total: Nat,
    pub request_payload_bytes_total: Nat,
    pub response_payload_bytes_total: Nat,
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct MemoryMetrics {
    pub wasm_memory_size: Nat,
    pub stable_memory_size: Nat,
    pub global_memory_size: Nat,
    pub wasm_binary_size: Nat,
    pub custom_sections_size: Nat,
    pub canister_history_size: Nat,
    pub wasm_chunk_store_size: Nat,
    pub snapshots_size: Nat,
    pub log_memory_store_size: Nat,
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct CanisterStatusResult {
    pub status: CanisterStatusType,
    /// Whether a stopped canister could move to another subnet (empty
    /// queues): here, whether it is stopped.
    pub ready_for_migration: bool,
    pub version: u64,
    pub settings: DefiniteCanisterSettings,
    pub module_hash: Option<Vec<u8>>,
    pub memory_size: Nat,
    pub cycles: Nat,
    pub reserved_cycles: Nat,
    pub idle_cycles_burned_per_day: Nat,
    pub query_stats: QueryStats,
    pub memory_metrics: MemoryMetrics,
}

/// What a management method produced.
pub(crate) enum Outcome {
    /// Answered now; `consumed` of the attached cycles were kept.
    Done {
        result: Result<Vec<u8>, Reject>,
        consumed: u128,
    },
    /// Answered later (`stop_canister` waits for the canister to stop).
    Deferred,
}

fn done(result: Result<Vec<u8>, Reject>) -> Outcome {
    Outcome::Done {
        result,
        consumed: 0,
    }
}

fn decode<T: CandidType + for<'de> Deserialize<'de>>(
    method: &str,
    arg: &[u8],
) -> Result<T, Reject> {
    candid::decode_one(arg).map_err(|e| {
        Reject::new(
            ErrorCode::InvalidManagementPayload,
            format!("Error decoding candid argument of ic00 method {method}: {e}"),
        )
    })
}

fn encode<T: CandidType>(value: &T) -> Result<Vec<u8>, Reject> {
    candid::encode_one(value).map_err(|e| {
        Reject::new(
            ErrorCode::CanisterContractViolation,
            format!("encoding the management canister's reply failed: {e}"),
        )
    })
}

fn nat_u128(n: &Nat, what: &str) -> Result<u128, Reject> {
    u128::try_from(n.0.clone()).map_err(|_| {
        Reject::new(
            ErrorCode::InvalidManagementPayload,
            format!("{what}: expected a number below 2^128, found {n}"),
        )
    })
}

fn nat_u64(n: &Nat, what: &str) -> Result<u64, Reject> {
    u64::try_from(n.0.clone()).map_err(|_| {
        Reject::new(
            ErrorCode::InvalidManagementPayload,
            format!("{what}: expected a number below 2^64, found {n}"),
        )
    })
}

/// Methods a user may call with an ingress message (the rest only from
/// canisters).
pub(crate) fn ingress_allowed(method: &str) -> bool {
    matches!(
        method,
        "provisional_create_canister_with_cycles"
            | "provisional_top_up_canister"
            | "install_code"
            | "install_chunked_code"
            | "upload_chunk"
            | "clear_chunk_store"
            | "stored_chunks"
            | "uninstall_code"
            | "start_canister"
            | "stop_canister"
            | "delete_canister"
            | "canister_status"
            | "update_settings"
    )
}

/// Checks environment variables as the IC does: at most
/// [`MAX_ENV_VARS`], names and values within their sizes, each name once.
fn env_vars_of(
    vars: &[EnvironmentVariable],
) -> Result<std::collections::BTreeMap<String, String>, Reject> {
    let bad = |m: String| Reject::new(ErrorCode::InvalidManagementPayload, m);
    if vars.len() > MAX_ENV_VARS {
        return Err(bad(format!(
            "at most {MAX_ENV_VARS} environment variables are allowed, found {}",
            vars.len()
        )));
    }
    let mut map = std::collections::BTreeMap::new();
    for v in vars {
        if v.name.len() > MAX_ENV_VAR_NAME_BYTES || v.value.len() > MAX_ENV_VAR_VALUE_BYTES {
            return Err(bad(format!(
                "environment variable `{}`: names and values have at most {MAX_ENV_VAR_NAME_BYTES} \
                 and {MAX_ENV_VAR_VALUE_BYTES} bytes, found {} and {}",
                v.name,
                v.name.len(),
                v.value.len()
            )));
        }
        if map.insert(v.name.clone(), v.value.clone()).is_some() {
            return Err(bad(format!(
                "environment variable `{}` is set twice",
                v.name
            )));
        }
    }
    Ok(map)
}

/// Who pays for inducting an ingress call to the management canister: the
/// canister it is about (provisional methods and undecodable arguments:
/// nobody).
pub(crate) fn ingress_payer(method: &str, arg: &[u8]) -> Option<Principal> {
    #[derive(CandidType, Deserialize)]
    struct Target {
        target_canister: Principal,
    }
    match method {
        "provisional_create_canister_with_cycles" | "provisional_top_up_canister" => None,
        "install_chunked_code" => candid::decode_one::<Target>(arg)
            .ok()
            .map(|t| t.target_canister),
        _ => candid::decode_one::<CanisterIdRecord>(arg)
            .ok()
            .map(|r| r.canister_id),
    }
}

/// Instructions charged to a canister for storing one chunk in its chunk
/// store (`DEFAULT_UPLOAD_CHUNK_INSTRUCTIONS` in `dfinity/ic`
/// `rs/config/src/subnet_config.rs`).
const UPLOAD_CHUNK_INSTRUCTIONS: u64 = 200_000_000;

impl LocalReplica {
    fn canister_ref(&self, id: Principal) -> Result<&Canister, Reject> {
        self.canisters.get(&id).ok_or_else(|| {
            Reject::new(
                ErrorCode::CanisterNotFound,
                format!("Canister {id} not found"),
            )
        })
    }

    fn controlled(
        &self,
        id: Principal,
        sender: Principal,
        method: &str,
    ) -> Result<&Canister, Reject> {
        let canister = self.canister_ref(id)?;
        if !canister.controllers.contains(&sender) {
            return Err(Reject::new(
                ErrorCode::CanisterInvalidController,
                format!(
                    "Only controllers of canister {id} can call ic00 method {method}; {sender} is not one"
                ),
            ));
        }
        Ok(canister)
    }

    fn apply_settings(&mut self, id: Principal, settings: &CanisterSettings) -> Result<(), Reject> {
        let max_controllers = self.limits.max_controllers;
        let freezing = settings
            .freezing_threshold
            .as_ref()
            .map(|n| nat_u64(n, "freezing_threshold"))
            .transpose()?;
        let memory_limit = settings
            .wasm_memory_limit
            .as_ref()
            .map(|n| nat_u64(n, "wasm_memory_limit"))
            .transpose()?;
        let env_vars = settings
            .environment_variables
            .as_ref()
            .map(|v| env_vars_of(v))
            .transpose()?;
        let canister = self.canisters.get_mut(&id).ok_or_else(|| {
            Reject::new(
                ErrorCode::CanisterNotFound,
                format!("Canister {id} not found"),
            )
        })?;
        if let Some(controllers) = &settings.controllers {
            if controllers.len() > max_controllers {
                return Err(Reject::new(
                    ErrorCode::InvalidManagementPayload,
                    format!(
                        "expected at most {max_controllers} controllers, found {}",
                        controllers.len()
                    ),
                ));
            }
            canister.controllers = controllers.clone();
        }
        if let Some(f) = freezing {
            canister.freezing_threshold = f;
        }
        if let Some(m) = memory_limit {
            canister.wasm_memory_limit = m;
        }
        if let Some(vars) = env_vars {
            canister.env_vars = vars;
        }
        Ok(())
    }

    pub(crate) fn new_canister(
        &mut self,
        specified: Option<Principal>,
        controllers: Vec<Principal>,
        cycles: u128,
        settings: Option<&CanisterSettings>,
    ) -> Result<Principal, Reject> {
        let id = match specified {
            Some(id) => {
                if self.canisters.contains_key(&id) || self.is_system_canister(id) {
                    return Err(Reject::new(
                        ErrorCode::InvalidManagementPayload,
                        format!("Canister {id} already exists"),
                    ));
                }
                id
            }
            None => loop {
                let id = crate::canister_id(self.next_canister_index);
                self.next_canister_index += 1;
                if !self.canisters.contains_key(&id) && !self.is_system_canister(id) {
                    break id;
                }
            },
        };
        let mut canister = Canister::new(id, controllers, cycles);
        canister.wasm_memory_limit = self.limits.default_wasm_memory_limit;
        self.canisters.insert(id, canister);
        if let Some(settings) = settings {
            if let Err(e) = self.apply_settings(id, settings) {
                self.canisters.remove(&id);
                return Err(e);
            }
        }
        Ok(id)
    }

    /// Runs a management method. `from_canister` says whether the sender is
    /// a canister (some methods are only for canisters).
    pub(crate) fn management(
        &mut self,
        sender: Principal,
        method: &str,
        arg: &[u8],
        cycles: u128,
        origin: &Origin,
    ) -> Outcome {
        let from_canister = matches!(origin, Origin::Canister { .. });
        if !from_canister && !ingress_allowed(method) && is_known(method) {
            return done(Err(Reject::new(
                ErrorCode::CanisterRejectedMessage,
                format!("Only canisters can call ic00 method {method}"),
            )));
        }
        match method {
            "create_canister" => {
                let fee = self.fees.creation_fee();
                let r = decode::<CreateCanisterArgs>(method, arg).and_then(|args| {
                    if cycles < fee {
                        return Err(Reject::new(
                            ErrorCode::InsufficientCyclesForCreateCanister,
                            format!(
                                "Creating a canister requires a fee of {fee} that is deducted from the \
                                 canister's initial balance but only {cycles} cycles were received with the \
                                 create_canister request."
                            ),
                        ));
                    }
                    let controllers = args
                        .settings
                        .as_ref()
                        .and_then(|s| s.controllers.clone())
                        .unwrap_or_else(|| vec![sender]);
                    let id = self.new_canister(
                        None,
                        controllers,
                        cycles - fee,
                        args.settings.as_ref(),
                    )?;
                    encode(&CanisterIdRecord { canister_id: id })
                });
                let consumed = if r.is_ok() { cycles } else { 0 };
                Outcome::Done {
                    result: r,
                    consumed,
                }
            }
            "provisional_create_canister_with_cycles" => done(
                decode::<ProvisionalCreateCanisterArgs>(method, arg).and_then(|args| {
                    let amount = match &args.amount {
                        Some(a) => nat_u128(a, "amount")?,
                        None => self.default_cycles,
                    };
                    let controllers = args
                        .settings
                        .as_ref()
                        .and_then(|s| s.controllers.clone())
                        .unwrap_or_else(|| vec![sender]);
                    let id = self.new_canister(
                        args.specified_id,
                        controllers,
                        amount,
                        args.settings.as_ref(),
                    )?;
                    encode(&CanisterIdRecord { canister_id: id })
                }),
            ),
            "provisional_top_up_canister" => done(
                decode::<ProvisionalTopUpArgs>(method, arg).and_then(|args| {
                    let amount = nat_u128(&args.amount, "amount")?;
                    self.canister_ref(args.canister_id)?;
                    if let Some(c) = self.canisters.get_mut(&args.canister_id) {
                        c.cycles = c.cycles.saturating_add(amount);
                    }
                    encode(&())
                }),
            ),
            "deposit_cycles" => {
                let r = decode::<CanisterIdRecord>(method, arg).and_then(|args| {
                    self.canister_ref(args.canister_id)?;
                    if let Some(c) = self.canisters.get_mut(&args.canister_id) {
                        c.cycles = c.cycles.saturating_add(cycles);
                    }
                    encode(&())
                });
                let consumed = if r.is_ok() { cycles } else { 0 };
                Outcome::Done {
                    result: r,
                    consumed,
                }
            }
            "install_code" => done(decode::<InstallCodeArgs>(method, arg).and_then(|args| {
                self.controlled(args.canister_id, sender, method)?;
                self.install_code_impl(sender, args.mode, args.canister_id, &args.wasm_module, args.arg)?;
                encode(&())
            })),
            "upload_chunk" => done(decode::<UploadChunkArgs>(method, arg).and_then(|args| {
                self.controlled(args.canister_id, sender, method)?;
                let cost = self.fees.execution_cost(UPLOAD_CHUNK_INSTRUCTIONS);
                self.withdraw(args.canister_id, cost)?;
                let (max_bytes, max_chunks) = (self.limits.max_chunk_bytes, self.limits.max_chunks);
                if args.chunk.len() as u64 > max_bytes {
                    return Err(Reject::new(
                        ErrorCode::InvalidManagementPayload,
                        format!(
                            "upload_chunk: a chunk may have at most {max_bytes} bytes; found {}",
                            args.chunk.len()
                        ),
                    ));
                }
                let hash: [u8; 32] = Sha256::digest(&args.chunk).into();
                let canister = self.canisters.get_mut(&args.canister_id).ok_or_else(|| {
                    Reject::new(ErrorCode::CanisterNotFound, "canister vanished".to_string())
                })?;
                if !canister.chunks.contains_key(&hash) && canister.chunks.len() >= max_chunks {
                    return Err(Reject::new(
                        ErrorCode::CanisterOutOfMemory,
                        format!(
                            "upload_chunk: the chunk store of canister {} is full ({max_chunks} chunks)",
                            args.canister_id
                        ),
                    ));
                }
                canister.chunks.insert(hash, args.chunk);
                encode(&ChunkHash {
                    hash: hash.to_vec(),
                })
            })),
            "clear_chunk_store" => done(decode::<CanisterIdRecord>(method, arg).and_then(|args| {
                self.controlled(args.canister_id, sender, method)?;
                if let Some(c) = self.canisters.get_mut(&args.canister_id) {
                    c.chunks.clear();
                }
                encode(&())
            })),
            "stored_chunks" => done(decode::<CanisterIdRecord>(method, arg).and_then(|args| {
                let canister = self.controlled(args.canister_id, sender, method)?;
                let hashes: Vec<ChunkHash> = canister
                    .chunks
                    .keys()
                    .map(|h| ChunkHash { hash: h.to_vec() })
                    .collect();
                encode(&hashes)
            })),
            "install_chunked_code" => done(
                decode::<InstallChunkedCodeArgs>(method, arg).and_then(|args| {
                    self.controlled(args.target_canister, sender, method)?;
                    let store_id = args.store_canister.unwrap_or(args.target_canister);
                    let store = self.controlled(store_id, sender, method)?;
                    let mut wasm = Vec::new();
                    for (i, h) in args.chunk_hashes_list.iter().enumerate() {
                        let key: Option<[u8; 32]> = h.hash.as_slice().try_into().ok();
                        let chunk = key.and_then(|k| store.chunks.get(&k)).ok_or_else(|| {
                            Reject::new(
                                ErrorCode::InvalidManagementPayload,
                                format!(
                                    "install_chunked_code: chunk {i} (hash {}) is not in the chunk store of canister {store_id}",
                                    hex::encode(&h.hash)
                                ),
                            )
                        })?;
                        wasm.extend_from_slice(chunk);
                    }
                    let found: [u8; 32] = Sha256::digest(&wasm).into();
                    if found.as_slice() != args.wasm_module_hash.as_slice() {
                        return Err(Reject::new(
                            ErrorCode::InvalidManagementPayload,
                            format!(
                                "install_chunked_code: expected the module hash {}, found {} for the concatenated chunks",
                                hex::encode(&args.wasm_module_hash),
                                hex::encode(found)
                            ),
                        ));
                    }
                    self.install_code_impl(sender, args.mode, args.target_canister, &wasm, args.arg)?;
                    encode(&())
                }),
            ),
            "uninstall_code" => done(decode::<CanisterIdRecord>(method, arg).and_then(|args| {
                self.controlled(args.canister_id, sender, method)?;
                self.uninstall(args.canister_id);
                encode(&())
            })),
            "start_canister" => done(decode::<CanisterIdRecord>(method, arg).and_then(|args| {
                self.controlled(args.canister_id, sender, method)?;
                let waiters = match self.canisters.get_mut(&args.canister_id) {
                    Some(c) => {
                        c.status = CanisterStatus::Running;
                        c.version += 1;
                        std::mem::take(&mut c.stop_waiters)
                    }
                    None => Vec::new(),
                };
                for w in waiters {
                    self.respond(
                        w,
                        crate::messaging::Response::Reject(Reject::new(
                            ErrorCode::CanisterStoppingCancelled,
                            format!("Canister {}'s stop request was cancelled by start_canister", args.canister_id),
                        )),
                        0,
                    );
                }
                encode(&())
            })),
            "stop_canister" => {
                let args = match decode::<CanisterIdRecord>(method, arg) {
                    Ok(a) => a,
                    Err(e) => return done(Err(e)),
                };
                if let Err(e) = self.controlled(args.canister_id, sender, method) {
                    return done(Err(e));
                }
                match self.canisters.get_mut(&args.canister_id) {
                    Some(c) if c.status == CanisterStatus::Stopped => done(encode(&())),
                    Some(c) => {
                        if c.status == CanisterStatus::Running {
                            c.version += 1;
                        }
                        c.status = CanisterStatus::Stopping;
                        c.stop_waiters.push(origin.clone());
                        Outcome::Deferred
                    }
                    None => done(Err(Reject::new(
                        ErrorCode::CanisterNotFound,
                        format!("Canister {} not found", args.canister_id),
                    ))),
                }
            }
            "delete_canister" => done(decode::<CanisterIdRecord>(method, arg).and_then(|args| {
                let canister = self.controlled(args.canister_id, sender, method)?;
                if canister.status != CanisterStatus::Stopped {
                    return Err(Reject::new(
                        ErrorCode::CanisterNotStopped,
                        format!("Canister {} must be stopped before it is deleted", args.canister_id),
                    ));
                }
                self.uninstall(args.canister_id);
                self.canisters.remove(&args.canister_id);
                encode(&())
            })),
            "canister_status" => done(decode::<CanisterIdRecord>(method, arg).and_then(|args| {
                let c = self.controlled(args.canister_id, sender, method)?;
                encode(&status_of(c, &self.fees))
            })),
            "update_settings" => done(decode::<UpdateSettingsArgs>(method, arg).and_then(|args| {
                self.controlled(args.canister_id, sender, method)?;
                self.apply_settings(args.canister_id, &args.settings)?;
                if let Some(c) = self.canisters.get_mut(&args.canister_id) {
                    c.version += 1;
                }
                encode(&())
            })),
            "raw_rand" => done(self.next_random().and_then(|bytes| {
                self.random_answers.push((sender, bytes.clone()));
                crate::replica::trim_history(&mut self.random_answers, self.history_limit);
                encode(&serde_bytes::ByteBuf::from(bytes))
            })),
            other => done(Err(Reject::new(
                ErrorCode::UnknownManagementMessage,
                format!("Management canister has no method '{other}'"),
            ))),
        }
    }

    fn next_random(&mut self) -> Result<Vec<u8>, Reject> {
        let mut h = Sha256::new();
        h.update(self.seed);
        h.update(self.rand_counter.to_le_bytes());
        self.rand_counter += 1;
        Ok(h.finalize().to_vec())
    }
}

fn is_known(method: &str) -> bool {
    ingress_allowed(method) || matches!(method, "create_canister" | "deposit_cycles" | "raw_rand")
}

pub(crate) fn status_of(c: &Canister, fees: &crate::cycles::FeeSchedule) -> CanisterStatusResult {
    let heap = c.wasm.as_ref().map(|w| w.heap_bytes() as u64).unwrap_or(0);
    let binary = c.wasm.as_ref().map(|w| w.compiled.size).unwrap_or(0);
    CanisterStatusResult {
        status: match c.status {
            CanisterStatus::Running => CanisterStatusType::Running,
            CanisterStatus::Stopping => CanisterStatusType::Stopping,
            CanisterStatus::Stopped => CanisterStatusType::Stopped,
        },
        ready_for_migration: c.status == CanisterStatus::Stopped,
        version: c.version,
        settings: DefiniteCanisterSettings {
            controllers: c.controllers.clone(),
            compute_allocation: Nat::from(0u32),
            memory_allocation: Nat::from(0u32),
            freezing_threshold: Nat::from(c.freezing_threshold),
            reserved_cycles_limit: Nat::from(5_000_000_000_000u64),
            log_visibility: LogVisibility::Controllers,
            // The IC's default canister log size.
            log_memory_limit: Nat::from(4096u32),
            snapshot_visibility: SnapshotVisibility::Controllers,
            status_visibility: StatusVisibility::Controllers,
            wasm_memory_limit: Nat::from(c.wasm_memory_limit),
            wasm_memory_threshold: Nat::from(0u32),
            environment_variables: c
                .env_vars
                .iter()
                .map(|(name, value)| EnvironmentVariable {
                    name: name.clone(),
                    value: value.clone(),
                })
                .collect(),
            minimum_incoming_canister_call_cycles: Nat::from(0u32),
            minimum_msg_cycles_available: Nat::from(0u32),
        },
        module_hash: c.module_hash().map(|h| h.to_vec()),
        memory_size: Nat::from(c.memory_size()),
        cycles: Nat::from(c.cycles),
        reserved_cycles: Nat::from(0u32),
        idle_cycles_burned_per_day: Nat::from(fees.idle_cycles_per_day(c.memory_size())),
        query_stats: QueryStats {
            num_calls_total: Nat::from(0u32),
            num_instructions_total: Nat::from(0u32),
            request_payload_bytes_total: Nat::from(0u32),
            response_payload_bytes_total: Nat::from(0u32),
        },
        memory_metrics: MemoryMetrics {
            wasm_memory_size: Nat::from(heap),
            stable_memory_size: Nat::from(c.stable.bytes().len() as u64),
            global_memory_size: Nat::from(0u32),
            wasm_binary_size: Nat::from(binary),
            custom_sections_size: Nat::from(0u32),
            canister_history_size: Nat::from(0u32),
            wasm_chunk_store_size: Nat::from(
                c.chunks.values().map(|v| v.len() as u64).sum::<u64>(),
            ),
            snapshots_size: Nat::from(0u32),
            log_memory_store_size: Nat::from(0u32),
        },
    }
}
