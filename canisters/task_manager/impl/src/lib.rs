//! The `task_manager` canister.
//!
//! Endpoints live one per file under [`updates`], [`queries`] and
//! [`lifecycle`]: each is a thin `#[update]` / `#[query]` wrapper around a
//! plain `*_impl` function that takes the [`state::State`] and an
//! [`env::Environment`] and is unit-tested natively beside it. The logic
//! they share is in [`model`]; stable memory is laid out in [`memory`].

pub mod dispatch;
pub mod env;
pub mod guards;
pub mod lifecycle;
pub mod memory;
pub mod model;
pub mod queries;
pub mod records;
pub mod state;
pub mod updates;

use task_manager_api::*;

ic_cdk::export_candid!();

#[cfg(test)]
mod tests {
    /// The checked-in `.did` is what the code exports. Regenerate with
    /// `UPDATE_DID=1 cargo test -p task_manager candid`.
    #[test]
    fn candid_interface_is_checked_in() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../api/task_manager.did");
        did_check::assert_checked_in(&path, &super::__export_service(), "task_manager");
        let released = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../api/released/task_manager.did");
        did_check::assert_compatible(&released, &super::__export_service(), "task_manager");
    }
}
