//! The `task_manager` canister.
//!
//! Endpoints live one per file under [`updates`], [`queries`] and
//! [`lifecycle`]: each is a thin `#[update]` / `#[query]` wrapper around a
//! plain `*_impl` function that takes the [`state::State`] and an
//! [`env::Environment`] and is unit-tested natively beside it. The logic
//! they share is in [`model`]; stable memory is laid out in [`memory`].

pub mod dispatch;
pub mod env;
pub mod lifecycle;
pub mod memory;
pub mod model;
pub mod queries;
pub mod state;
pub mod updates;

use task_manager_api::*;

ic_cdk::export_candid!();

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// The checked-in `.did` is what the code exports. Regenerate with
    /// `UPDATE_DID=1 cargo test -p task_manager candid`.
    #[test]
    fn candid_interface_is_checked_in() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../api/task_manager.did");
        let generated = super::__export_service();
        if std::env::var("UPDATE_DID").is_ok_and(|v| v == "1") {
            std::fs::write(&path, &generated).unwrap();
        }
        let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            checked_in == generated,
            "{} differs from the interface the code exports; run UPDATE_DID=1 cargo test -p task_manager candid\n--- generated ---\n{generated}",
            path.display()
        );
    }
}
