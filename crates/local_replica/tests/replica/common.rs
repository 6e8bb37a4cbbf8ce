//! Building the test canisters and setting up a replica.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use candid::Principal;
use local_replica::{Config, Error, ErrorCode, LocalReplica, RejectCode};

pub const CANISTERS: [&str; 5] = [
    "tc_counter",
    "tc_caller",
    "tc_trapper",
    "tc_stable",
    "tc_timers",
];

fn workspace() -> PathBuf {
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

/// Builds every test canister once per test run (a no-op when they are up
/// to date).
fn build() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.current_dir(workspace()).args([
            "build",
            "--target",
            "wasm32-unknown-unknown",
            "--release",
        ]);
        for c in CANISTERS {
            cmd.args(["-p", c]);
        }
        let status = cmd.status().expect("running cargo");
        assert!(status.success(), "building the test canisters failed");
        target_dir().join("wasm32-unknown-unknown/release")
    })
}

/// The wasm module of a test canister.
pub fn wasm(name: &str) -> Vec<u8> {
    let path = build().join(format!("{name}.wasm"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

pub fn user() -> Principal {
    Principal::from_slice(&[0xaa; 29])
}

pub fn other_user() -> Principal {
    Principal::from_slice(&[0xbb; 29])
}

pub fn replica() -> LocalReplica {
    LocalReplica::new().expect("replica")
}

pub fn replica_with(config: Config) -> LocalReplica {
    LocalReplica::with_config(config).expect("replica")
}

/// Creates a canister controlled by `user()` and installs `name` with a
/// candid argument.
pub fn install(ic: &mut LocalReplica, name: &str, arg: Vec<u8>) -> Principal {
    let id = ic.create_canister(user()).expect("create");
    ic.install_canister(user(), id, wasm(name), arg)
        .unwrap_or_else(|e| panic!("installing {name}: {e}"));
    id
}

pub fn counter(ic: &mut LocalReplica) -> Principal {
    install(ic, "tc_counter", candid::encode_one(None::<u64>).unwrap())
}

pub fn no_arg() -> Vec<u8> {
    candid::encode_args(()).unwrap()
}

/// The reject of an error, or a panic naming what was found.
#[track_caller]
pub fn rejected(result: Result<impl std::fmt::Debug, Error>) -> local_replica::Reject {
    match result {
        Err(Error::Rejected(r)) => r,
        other => panic!("expected a reject, found {other:?}"),
    }
}

#[track_caller]
pub fn assert_reject(
    result: Result<impl std::fmt::Debug, Error>,
    code: RejectCode,
    error_code: ErrorCode,
    needle: &str,
) {
    let r = rejected(result);
    assert_eq!(r.code, code, "{r}");
    assert_eq!(r.error_code, Some(error_code), "{r}");
    assert!(r.message.contains(needle), "expected `{needle}` in: {r}");
}
