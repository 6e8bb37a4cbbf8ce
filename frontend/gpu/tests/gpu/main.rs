//! GPU tests on the native adapter (Vulkan; Mesa's lavapipe in CI): every
//! kernel against a plain-Rust reference on ragged shapes, and the whole
//! model against the tract engine on the fixture prompts.
//!
//! Without a Vulkan adapter the tests fail (they do not skip): CI installs
//! lavapipe (`scripts/setup.sh`).

mod kernels;
mod loader;
mod model;

use std::sync::OnceLock;

use gpu::Gpu;

/// The adapter, opened once per test binary.
pub fn gpu() -> &'static Gpu {
    static GPU: OnceLock<Gpu> = OnceLock::new();
    GPU.get_or_init(|| match Gpu::new_blocking() {
        Ok(gpu) => {
            eprintln!("adapter: {}", gpu.describe());
            gpu
        }
        Err(e) => panic!("these tests need a GPU adapter and found none: {e}"),
    })
}

/// Asserts `|actual - expected| <= atol + rtol * |expected|` everywhere and
/// returns the largest absolute difference.
pub fn all_close(what: &str, actual: &[f32], expected: &[f32], atol: f32, rtol: f32) -> f32 {
    assert_eq!(actual.len(), expected.len(), "{what}: lengths differ");
    let mut max_diff = 0.0f32;
    for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
        let diff = (a - e).abs();
        assert!(
            diff <= atol + rtol * e.abs(),
            "{what}: element {i}: {a} vs {e} (diff {diff}, atol {atol}, rtol {rtol})"
        );
        max_diff = max_diff.max(diff);
    }
    max_diff
}
