//! The repository's canisters as they ship, for its own tests and tools:
//! `scripts/build_canisters.sh <name>` run once per process and canister,
//! under a lock, so that tests running in parallel never build the same
//! module twice at once.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// The checkout this crate was built from.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `$CARGO_TARGET_DIR` (relative to the checkout when relative), or the
/// checkout's `target/`.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from) {
        Some(p) if p.is_relative() => workspace().join(p),
        Some(p) => p,
        None => workspace().join("target"),
    }
}

/// The module of canister `name` (`task_manager`, `worker`,
/// `example_caller`), built by `scripts/build_canisters.sh` the first time
/// this process asks for it (a quick no-op for cargo when up to date).
/// Panics when the build fails: this is for tests and benchmarks.
pub fn wasm_path(name: &str) -> PathBuf {
    static BUILT: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());
    // Held during the build: builds in one target directory are serial
    // anyway (cargo's lock, then the script's own).
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if !built.contains(name) {
        let status = Command::new("bash")
            .arg(workspace().join("scripts/build_canisters.sh"))
            .arg(name)
            .current_dir(workspace())
            .env("CARGO_TARGET_DIR", target_dir())
            // As shipped, not as dfx would build it for one deployment (the
            // example caller would take the id as its default).
            .env_remove("CANISTER_ID_TASK_MANAGER")
            .status()
            .expect("running scripts/build_canisters.sh");
        assert!(status.success(), "scripts/build_canisters.sh {name} failed");
        built.insert(name.to_string());
    }
    target_dir().join("canisters").join(format!("{name}.wasm"))
}

/// The bytes of [`wasm_path`].
pub fn wasm(name: &str) -> Vec<u8> {
    let path = wasm_path(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}
