//! Helpers for the canister integration tests: building the canisters'
//! wasm, a replica with them installed, and the bundled models' files.
//!
//! The tests (`tests/canisters/`, one binary) run the real wasm in
//! [`local_replica`]; they build the canisters themselves with
//! `scripts/build_canisters.sh` (a quick no-op when up to date).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use candid::{encode_one, Principal};
use local_replica::LocalReplica;
use model_format::Manifest;
use serde_bytes::ByteBuf;
use task_manager_api::{ChunkRef, InitArgs, ModelFile};

/// The canisters this repository ships.
pub const CANISTERS: [&str; 1] = ["task_manager"];

pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|p| {
            if p.is_relative() {
                workspace().join(p)
            } else {
                p
            }
        })
        .unwrap_or_else(|| workspace().join("target"))
}

/// The wasm of one of [`CANISTERS`] as it ships: built once per test run
/// by `scripts/build_canisters.sh` (canister profile, candid metadata).
pub fn wasm(name: &str) -> Vec<u8> {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    let dir = DIR.get_or_init(|| {
        let status = Command::new("bash")
            .arg(workspace().join("scripts/build_canisters.sh"))
            .current_dir(workspace())
            .env("CARGO_TARGET_DIR", target_dir())
            .status()
            .expect("running scripts/build_canisters.sh");
        assert!(status.success(), "scripts/build_canisters.sh failed");
        target_dir().join("canisters")
    });
    let path = dir.join(format!("{name}.wasm"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// A principal for tests: `n` distinguishes users.
pub fn principal(n: u8) -> Principal {
    Principal::from_slice(&[n, 0x17, 0x42, 0x01])
}

/// The controller of the canisters the tests install.
pub fn controller() -> Principal {
    Principal::from_slice(&[0xc0, 0xde, 0x01])
}

/// A replica with the task manager installed by [`controller`].
pub struct Env {
    pub ic: LocalReplica,
    pub task_manager: Principal,
}

impl Env {
    pub fn new(args: InitArgs) -> Env {
        let mut ic = LocalReplica::new().expect("a replica");
        let task_manager = ic.create_canister(controller()).expect("create_canister");
        ic.install_canister(
            controller(),
            task_manager,
            wasm("task_manager"),
            encode_one(Some(args)).expect("candid"),
        )
        .expect("installing the task manager");
        Env { ic, task_manager }
    }
}

/// A file of a bundled model directory (`models/<dir>/<name>`).
pub fn model_file(dir: &str, name: &str) -> Vec<u8> {
    let path = workspace().join("models").join(dir).join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// Every chunk of a bundled model directory with its bytes, in upload
/// order (tokenizer pieces, then each stage's chunks).
pub fn model_chunks(dir: &str) -> Vec<(ChunkRef, ByteBuf)> {
    let manifest = Manifest::from_json(&model_file(dir, "manifest.json")).expect("manifest");
    let chunk = |file, index| ChunkRef {
        model: manifest.name.clone(),
        file,
        index,
    };
    let mut out = Vec::new();
    let tokenizer = model_file(dir, &manifest.tokenizer.file);
    for (i, piece) in tokenizer.chunks(manifest.chunk_size as usize).enumerate() {
        out.push((chunk(ModelFile::Tokenizer, i as u32), ByteBuf::from(piece)));
    }
    for stage in &manifest.stages {
        let bytes = model_file(dir, &stage.file);
        for (i, c) in stage.chunks.iter().enumerate() {
            let piece = &bytes[c.offset as usize..(c.offset + c.size) as usize];
            out.push((
                chunk(ModelFile::Stage(stage.index as u32), i as u32),
                ByteBuf::from(piece),
            ));
        }
    }
    out
}
