//! Candid interfaces are checked mechanically:
//!
//! - [`assert_checked_in`]: the checked-in `.did` of a canister is the
//!   interface its code exports (`ic_cdk::export_candid!()`'s
//!   `__export_service()`);
//! - [`assert_compatible`]: that interface is still a subtype of the last
//!   released one (candid's subtype check: clients built against the
//!   release keep working), unless the break is marked.
//!
//! ```no_run
//! # fn __export_service() -> String { String::new() }
//! let did = std::path::Path::new("canisters/worker/api/worker.did");
//! did_check::assert_checked_in(did, &__export_service(), "worker");
//! let released = std::path::Path::new("canisters/worker/api/released/worker.did");
//! did_check::assert_compatible(released, &__export_service(), "worker");
//! ```
//!
//! With `UPDATE_DID=1` the checked-in file is rewritten first (`UPDATE_DID=1
//! cargo test -p <crate> candid`).
//!
//! A deliberate break is marked by a file next to the released interface,
//! `<name>.breaking`, whose first line is the SHA-256 of the exact
//! interface it allows (any further change is checked again) and whose
//! other lines say why. `MARK_BREAKING_DID="why"` writes it. A release
//! copies the interface over `released/<name>.did` and deletes the mark.

use std::path::{Path, PathBuf};

use candid_parser::utils::{service_compatible, CandidSource};
use sha2::{Digest, Sha256};

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

/// Whether `new` can replace `old` for every client of `old` (candid's
/// subtype check of the two services); why not, otherwise.
pub fn compatible(new: &str, old: &str) -> Result<(), String> {
    service_compatible(CandidSource::Text(new), CandidSource::Text(old))
        .map_err(|e| format!("{e:#}"))
}

/// The mark that allows a break: `<released>.breaking` beside it.
pub fn breaking_mark(released: &Path) -> PathBuf {
    released.with_extension("breaking")
}

fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// Panics when `generated` is not compatible with the released interface
/// at `released` and no mark allows exactly this interface.
pub fn assert_compatible(released: &Path, generated: &str, package: &str) {
    let old = std::fs::read_to_string(released)
        .unwrap_or_else(|e| panic!("reading the released interface {}: {e}", released.display()));
    let mark = breaking_mark(released);
    if let Ok(reason) = std::env::var("MARK_BREAKING_DID") {
        std::fs::write(&mark, format!("{}\n{reason}\n", sha256_hex(generated)))
            .unwrap_or_else(|e| panic!("writing {}: {e}", mark.display()));
    }
    let Err(why) = compatible(generated, &old) else {
        return;
    };
    let marked = std::fs::read_to_string(&mark)
        .ok()
        .and_then(|m| m.lines().next().map(str::to_string));
    assert!(
        marked.as_deref() == Some(sha256_hex(generated).as_str()),
        "the interface of {package} is not compatible with the released {}: {why}\n\
         Keep it compatible, or mark the break for this exact interface: \
         MARK_BREAKING_DID=\"why\" cargo test -p {package} candid",
        released.display()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD: &str = "type R = variant { Ok : nat64; Err : text };\n\
                       service : { get : (nat64) -> (R) query; put : (text) -> () }";

    #[test]
    fn additions_are_compatible_and_removals_are_not() {
        assert_eq!(compatible(OLD, OLD), Ok(()));
        let added = "type R = variant { Ok : nat64; Err : text };\n\
                     service : { get : (nat64) -> (R) query; put : (text) -> (); more : () -> () }";
        assert_eq!(compatible(added, OLD), Ok(()));
        let removed = "type R = variant { Ok : nat64; Err : text };\n\
                       service : { get : (nat64) -> (R) query }";
        assert!(compatible(removed, OLD).is_err());
        // A new error variant breaks a client that decodes the old ones.
        let new_err = "type R = variant { Ok : nat64; Err : text; Other : null };\n\
                       service : { get : (nat64) -> (R) query; put : (text) -> () }";
        assert!(compatible(new_err, OLD).is_err());
        let retyped = "type R = variant { Ok : nat64; Err : text };\n\
                       service : { get : (text) -> (R) query; put : (text) -> () }";
        assert!(compatible(retyped, OLD).is_err());
    }

    #[test]
    fn a_mark_allows_exactly_the_interface_it_names() {
        let dir = std::env::temp_dir().join(format!("did_check_{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let released = dir.join("x.did");
        std::fs::write(&released, OLD).unwrap();
        let broken = "service : { get : (nat64) -> (nat64) query }";
        let refused = std::panic::catch_unwind(|| assert_compatible(&released, broken, "x"));
        assert!(refused.is_err());
        std::fs::write(
            breaking_mark(&released),
            format!("{}\nwhy\n", sha256_hex(broken)),
        )
        .unwrap();
        assert_compatible(&released, broken, "x");
        let other = "service : { get : (nat64) -> (text) query }";
        let refused = std::panic::catch_unwind(|| assert_compatible(&released, other, "x"));
        assert!(refused.is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
