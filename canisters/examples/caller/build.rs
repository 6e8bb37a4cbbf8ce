//! The task manager's id can come from the build: dfx exports
//! `CANISTER_ID_TASK_MANAGER` to the build command of a canister that lists
//! `task_manager` in its `dependencies` (`option_env!` in `lib.rs`). Rebuild
//! when it changes, e.g. between networks.
fn main() {
    println!("cargo:rerun-if-env-changed=CANISTER_ID_TASK_MANAGER");
    println!("cargo:rerun-if-changed=build.rs");
}
