//! The checked-in `.did` of a canister must be the interface its code
//! exports (`ic_cdk::export_candid!()`'s `__export_service()`).
//!
//! ```no_run
//! # fn __export_service() -> String { String::new() }
//! let did = std::path::Path::new("canisters/worker/api/worker.did");
//! did_check::assert_checked_in(did, &__export_service(), "worker");
//! ```
//!
//! With `UPDATE_DID=1` the file is rewritten first (`UPDATE_DID=1 cargo test
//! -p <crate> candid`).

use std::path::Path;

/// Panics, with the generated interface, when `path` differs from
/// `generated`.
pub fn assert_checked_in(path: &Path, generated: &str, package: &str) {
    if std::env::var("UPDATE_DID").is_ok_and(|v| v == "1") {
        std::fs::write(path, generated)
            .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    }
    let checked_in = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        checked_in == generated,
        "{} differs from the interface the code exports; run UPDATE_DID=1 cargo test -p {package} candid\n--- generated ---\n{generated}",
        path.display()
    );
}
