//! The `getrandom` custom backend for `wasm32-unknown-unknown`.
//!
//! A canister has no OS entropy, and the engine's own results never depend
//! on any: the sampling PRNG is seeded explicitly (a canister takes the seed
//! from the management canister's `raw_rand`). Dependencies link `getrandom`
//! anyway (`--cfg getrandom_backend="custom"` in `.cargo/config.toml` makes
//! it call `__getrandom_v03_custom`, which the final wasm module must
//! define), and one of them cannot do without it: `tokenizers` builds its
//! hash maps with `ahash`, whose `RandomState` seeds itself from `getrandom`
//! and panics when that fails — so a backend that refuses (returns
//! `UNSUPPORTED`) makes every tokenizer load trap.
//!
//! This backend therefore serves a **pseudo-random stream, not entropy**:
//! xoshiro256** from a fixed seed, or from [`seed_entropy`]. Hash seeds only
//! affect hash-map layout, never tokens or text. A canister that wants
//! unpredictable hash seeds (against hash flooding through the tokenizer's
//! word cache) calls [`seed_entropy`] with `raw_rand` bytes before building
//! its first [`Tokenizer`](crate::Tokenizer): ahash takes its seeds once per
//! process.
//!
//! getrandom 0.3 and 0.4 (the latter through tract's `rand`) both call this
//! same symbol; their `Error` types have the same layout.

use std::sync::Mutex;

use crate::sampling::Xoshiro256StarStar;

/// Seed used until [`seed_entropy`] is called.
const DEFAULT_SEED: [u8; 32] = *b"icllm-engine/wasm32/no-entropy!!";

static STREAM: Mutex<Option<Xoshiro256StarStar>> = Mutex::new(None);

/// Reseeds the byte stream served to `getrandom` (e.g. with `raw_rand`).
pub fn seed_entropy(seed: &[u8; 32]) {
    let mut stream = STREAM
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    *stream = Some(Xoshiro256StarStar::from_seed(seed));
}

/// Called by `getrandom`: fills `dest` from the stream.
///
/// # Safety
///
/// `getrandom` calls it with `dest` valid for writes of `len` bytes.
#[no_mangle]
unsafe extern "Rust" fn __getrandom_v03_custom(
    dest: *mut u8,
    len: usize,
) -> Result<(), getrandom::Error> {
    if len == 0 {
        return Ok(());
    }
    // SAFETY: guaranteed by the caller (getrandom's custom-backend contract).
    let dest = unsafe { std::slice::from_raw_parts_mut(dest, len) };
    let mut stream = STREAM
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let rng = stream.get_or_insert_with(|| Xoshiro256StarStar::from_seed(&DEFAULT_SEED));
    for chunk in dest.chunks_mut(8) {
        let bytes = rng.next_u64().to_le_bytes();
        chunk.copy_from_slice(&bytes[..chunk.len()]);
    }
    Ok(())
}
