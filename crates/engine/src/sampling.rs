//! Choosing the next token from a row of logits.
//!
//! [`SamplingParams`] holds what a caller may ask for (temperature, top-k,
//! top-p, repetition penalty, limits, stop sequences, seed); [`Sampler`]
//! applies them in the Hugging Face order: repetition penalty → temperature →
//! top-k → top-p → draw. A temperature of 0 means greedy decoding (argmax,
//! lowest id on ties).
//!
//! Sampling is **bit-identical on every target**: randomness comes from our
//! own xoshiro256** generator seeded from the 32-byte seed, the softmax uses
//! `libm::exp` (pure Rust, the same code on native and wasm32) with the
//! maximum subtracted, sums are done in `f64` in a fixed order, and ties are
//! broken by token id. The same logits and the same seed therefore give the
//! same token on a canister and on a laptop.
//!
//! ```
//! use engine::{Sampler, SamplingParams};
//! let params = SamplingParams { temperature: 0.8, top_k: 40, seed: [7; 32], ..Default::default() };
//! let mut sampler = Sampler::new(&params)?;
//! let token = sampler.sample(&[0.1, 2.0, -1.0, 0.5], &[])?;
//! assert!(token < 4);
//! # Ok::<(), engine::Error>(())
//! ```

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

pub use model_format::limits::{MAX_STOP_SEQUENCES, MAX_STOP_SEQUENCE_BYTES};

/// Temperatures below this are greedy decoding: dividing logits by less
/// overflows `f32` for ordinary logits (a temperature of 1e-40 turns them
/// into infinities, and the softmax into NaN), and at this temperature
/// the draw is already the argmax for all practical purposes.
pub const MIN_TEMPERATURE: f32 = 1e-3;

/// How to pick tokens, and when to stop.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SamplingParams {
    /// Below [`MIN_TEMPERATURE`] (0 included) greedy; otherwise logits are
    /// divided by it.
    pub temperature: f32,
    /// Keep only the `top_k` most likely tokens; 0 = no limit.
    pub top_k: usize,
    /// Keep the smallest set of most likely tokens whose probability reaches
    /// `top_p`; in (0, 1], 1 = no limit.
    pub top_p: f32,
    /// HF repetition penalty over prompt and generated tokens; 1 = none.
    pub repetition_penalty: f32,
    /// Generate at most this many tokens (> 0).
    pub max_new_tokens: usize,
    /// Stop when the generated text contains one of these (not emitted).
    pub stop_sequences: Vec<String>,
    /// Seed of the sampling PRNG (a canister takes it from `raw_rand`).
    pub seed: [u8; 32],
}

impl Default for SamplingParams {
    /// Greedy decoding of at most 128 tokens.
    fn default() -> Self {
        SamplingParams {
            temperature: 0.0,
            top_k: 0,
            top_p: 1.0,
            repetition_penalty: 1.0,
            max_new_tokens: 128,
            stop_sequences: Vec::new(),
            seed: [0; 32],
        }
    }
}

impl SamplingParams {
    /// Greedy decoding of at most `max_new_tokens` tokens.
    pub fn greedy(max_new_tokens: usize) -> Self {
        SamplingParams {
            max_new_tokens,
            ..Default::default()
        }
    }

    /// Whether these parameters pick the argmax.
    pub fn is_greedy(&self) -> bool {
        self.temperature < MIN_TEMPERATURE
    }

    /// Checks every field's domain.
    pub fn validate(&self) -> Result<()> {
        let bad = |message: String| Err(Error::InvalidParams(message));
        if !(self.temperature.is_finite() && self.temperature >= 0.0) {
            return bad(format!(
                "temperature must be a finite number >= 0, found {}",
                self.temperature
            ));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return bad(format!("top_p must be in (0, 1], found {}", self.top_p));
        }
        if !(self.repetition_penalty.is_finite() && self.repetition_penalty > 0.0) {
            return bad(format!(
                "repetition_penalty must be a finite number > 0, found {}",
                self.repetition_penalty
            ));
        }
        if self.max_new_tokens == 0 {
            return bad("max_new_tokens must be > 0, found 0".into());
        }
        if self.stop_sequences.len() > MAX_STOP_SEQUENCES {
            return bad(format!(
                "at most {MAX_STOP_SEQUENCES} stop sequences, found {}",
                self.stop_sequences.len()
            ));
        }
        for stop in &self.stop_sequences {
            if stop.is_empty() || stop.len() > MAX_STOP_SEQUENCE_BYTES {
                return bad(format!(
                    "stop sequences must have 1..={MAX_STOP_SEQUENCE_BYTES} bytes, found {} ({stop:?})",
                    stop.len()
                ));
            }
        }
        Ok(())
    }
}

/// Picks tokens according to [`SamplingParams`], with its own seeded PRNG.
#[derive(Debug, Clone)]
pub struct Sampler {
    temperature: f32,
    top_k: usize,
    top_p: f32,
    repetition_penalty: f32,
    rng: Xoshiro256StarStar,
}

impl Sampler {
    /// Validates `params` and seeds the generator.
    pub fn new(params: &SamplingParams) -> Result<Self> {
        params.validate()?;
        Ok(Sampler {
            temperature: if params.is_greedy() {
                0.0
            } else {
                params.temperature
            },
            top_k: params.top_k,
            top_p: params.top_p,
            repetition_penalty: params.repetition_penalty,
            rng: Xoshiro256StarStar::from_seed(&params.seed),
        })
    }

    /// Picks the next token. `context` holds the prompt and the tokens
    /// generated so far (for the repetition penalty).
    pub fn sample(&mut self, logits: &[f32], context: &[u32]) -> Result<u32> {
        if logits.is_empty() || logits.len() > u32::MAX as usize {
            return Err(Error::ShapeMismatch {
                what: "logits".into(),
                expected: "1..=u32::MAX values".into(),
                found: format!("{} values", logits.len()),
            });
        }
        let mut scores = logits.to_vec();
        if self.repetition_penalty != 1.0 {
            apply_repetition_penalty(&mut scores, context, self.repetition_penalty);
        }
        if self.temperature == 0.0 {
            return Ok(argmax(&scores));
        }
        // Candidates with a usable score, best first, ties by id.
        let mut candidates: Vec<(u32, f32)> = scores
            .iter()
            .enumerate()
            .filter(|(_, s)| !s.is_nan() && **s != f32::NEG_INFINITY)
            .map(|(id, s)| (id as u32, *s / self.temperature))
            .collect();
        if candidates.is_empty() {
            return Ok(argmax(&scores));
        }
        if self.top_k > 0 && self.top_k < candidates.len() {
            candidates.select_nth_unstable_by(self.top_k - 1, by_score_desc);
            candidates.truncate(self.top_k);
        }
        candidates.sort_unstable_by(by_score_desc);

        // Softmax, max subtracted; f64 and libm so that every target agrees.
        let max = f64::from(candidates[0].1);
        let weights: Vec<f64> = candidates
            .iter()
            .map(|(_, s)| libm::exp(f64::from(*s) - max))
            .collect();
        let total: f64 = weights.iter().sum();

        let mut kept = weights.len();
        if self.top_p < 1.0 {
            let threshold = f64::from(self.top_p) * total;
            let mut before = 0.0;
            for (i, w) in weights.iter().enumerate() {
                if before >= threshold {
                    kept = i;
                    break;
                }
                before += w;
            }
        }
        let kept_total: f64 = weights[..kept].iter().sum();
        let target = self.rng.next_f64() * kept_total;
        let mut cumulative = 0.0;
        for (i, w) in weights[..kept].iter().enumerate() {
            cumulative += w;
            if target < cumulative {
                return Ok(candidates[i].0);
            }
        }
        Ok(candidates[kept - 1].0)
    }
}

/// Descending score, then ascending id: a total order, so that every
/// selection and sort gives the same result everywhere.
fn by_score_desc(a: &(u32, f32), b: &(u32, f32)) -> Ordering {
    b.1.total_cmp(&a.1).then(a.0.cmp(&b.0))
}

/// Index of the largest score, lowest index on ties; NaN never wins.
pub fn argmax(scores: &[f32]) -> u32 {
    let mut best = 0usize;
    let mut best_score = f32::NEG_INFINITY;
    for (i, s) in scores.iter().enumerate() {
        if *s > best_score {
            best = i;
            best_score = *s;
        }
    }
    best as u32
}

/// HF repetition penalty: for every distinct token of `context`, divide a
/// positive logit by `penalty`, multiply a negative one.
pub fn apply_repetition_penalty(scores: &mut [f32], context: &[u32], penalty: f32) {
    let mut seen = context.to_vec();
    seen.sort_unstable();
    seen.dedup();
    for id in seen {
        if let Some(s) = scores.get_mut(id as usize) {
            *s = if *s > 0.0 { *s / penalty } else { *s * penalty };
        }
    }
}

/// xoshiro256** (Blackman & Vigna), seeded through SHA-256 so that any 32-byte
/// seed, all zeros included, gives a well-mixed non-zero state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Xoshiro256StarStar {
    s: [u64; 4],
}

impl Xoshiro256StarStar {
    /// Derives the state from `seed`.
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        let digest = Sha256::new()
            .chain_update(b"engine/sampling/xoshiro256**/v1")
            .chain_update(seed)
            .finalize();
        let mut s = [0u64; 4];
        for (word, bytes) in s.iter_mut().zip(digest.chunks_exact(8)) {
            let mut le = [0u8; 8];
            le.copy_from_slice(bytes);
            *word = u64::from_le_bytes(le);
        }
        if s == [0; 4] {
            // Unreachable in practice (a SHA-256 of zero); the all-zero state
            // is the one state xoshiro must avoid.
            s[0] = 0x9e37_79b9_7f4a_7c15;
        }
        Xoshiro256StarStar { s }
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Uniform in [0, 1), 53 bits of precision.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(temperature: f32, seed: u8) -> SamplingParams {
        SamplingParams {
            temperature,
            seed: [seed; 32],
            ..Default::default()
        }
    }

    #[test]
    fn validation() {
        assert_eq!(SamplingParams::default().validate(), Ok(()));
        let cases = [
            SamplingParams {
                max_new_tokens: 0,
                ..Default::default()
            },
            params(-0.5, 0),
            params(f32::NAN, 0),
            params(f32::INFINITY, 0),
            SamplingParams {
                top_p: 0.0,
                ..Default::default()
            },
            SamplingParams {
                top_p: 1.5,
                ..Default::default()
            },
            SamplingParams {
                top_p: f32::NAN,
                ..Default::default()
            },
            SamplingParams {
                repetition_penalty: 0.0,
                ..Default::default()
            },
            SamplingParams {
                stop_sequences: vec![String::new()],
                ..Default::default()
            },
            SamplingParams {
                stop_sequences: vec!["x".into(); MAX_STOP_SEQUENCES + 1],
                ..Default::default()
            },
        ];
        for case in cases {
            assert!(
                matches!(case.validate(), Err(Error::InvalidParams(_))),
                "{case:?} should be refused"
            );
            assert!(Sampler::new(&case).is_err());
        }
    }

    #[test]
    fn a_temperature_below_the_minimum_is_greedy() {
        // Logits an ordinary model makes, with a far second best.
        let logits = [3.0, -40.0, 41.5, 41.0, -7.0];
        for t in [1e-40_f32, 1e-30, 1e-6, MIN_TEMPERATURE / 2.0] {
            let p = params(t, 0);
            assert!(p.is_greedy(), "{t}");
            let mut s = Sampler::new(&p).unwrap();
            for _ in 0..20 {
                assert_eq!(s.sample(&logits, &[]).unwrap(), 2, "{t}");
            }
        }
        assert!(!params(MIN_TEMPERATURE, 0).is_greedy());
    }

    #[test]
    fn greedy_takes_lowest_id_on_ties_and_ignores_nan() {
        let mut s = Sampler::new(&params(0.0, 0)).unwrap();
        assert_eq!(s.sample(&[1.0, 3.0, 3.0, 2.0], &[]).unwrap(), 1);
        assert_eq!(s.sample(&[f32::NAN, -1.0, -2.0], &[]).unwrap(), 1);
        assert_eq!(argmax(&[f32::NEG_INFINITY; 3]), 0);
        assert!(s.sample(&[], &[]).is_err());
    }

    #[test]
    fn repetition_penalty_is_hf_style() {
        let mut scores = vec![2.0, -2.0, 1.0, 4.0];
        apply_repetition_penalty(&mut scores, &[0, 1, 0, 9], 2.0);
        assert_eq!(scores, vec![1.0, -4.0, 1.0, 4.0]);

        let greedy_penalised = SamplingParams {
            repetition_penalty: 4.0,
            ..Default::default()
        };
        let mut s = Sampler::new(&greedy_penalised).unwrap();
        assert_eq!(s.sample(&[3.0, 1.0], &[]).unwrap(), 0);
        assert_eq!(s.sample(&[3.0, 1.0], &[0]).unwrap(), 1);
    }

    #[test]
    fn prng_known_answer() {
        // Pins the generator: a change here changes every sampled token.
        let mut rng = Xoshiro256StarStar::from_seed(&[0; 32]);
        let first: Vec<u64> = (0..3).map(|_| rng.next_u64()).collect();
        let mut again = Xoshiro256StarStar::from_seed(&[0; 32]);
        assert_eq!(first, (0..3).map(|_| again.next_u64()).collect::<Vec<_>>());
        let mut other = Xoshiro256StarStar::from_seed(&[1; 32]);
        assert_ne!(first[0], other.next_u64());
        assert_eq!(first, PRNG_ZERO_SEED);
        for _ in 0..1000 {
            let x = rng.next_f64();
            assert!((0.0..1.0).contains(&x));
        }
    }

    const PRNG_ZERO_SEED: [u64; 3] = [
        15197780132163373717,
        10188847541241153911,
        8186254478484575462,
    ];

    #[test]
    fn same_seed_same_tokens() {
        let logits: Vec<f32> = (0..50).map(|i| (i % 7) as f32 * 0.3).collect();
        let draw = |seed| {
            let mut s = Sampler::new(&params(1.0, seed)).unwrap();
            (0..40)
                .map(|_| s.sample(&logits, &[]).unwrap())
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(1), draw(1));
        assert_ne!(draw(1), draw(2));
    }

    #[test]
    fn frequencies_follow_softmax() {
        // p(1) = 3/4 with logits [0, ln 3].
        let logits = [0.0, 3f32.ln()];
        let mut s = Sampler::new(&params(1.0, 3)).unwrap();
        let n = 20_000;
        let ones = (0..n)
            .filter(|_| s.sample(&logits, &[]).unwrap() == 1)
            .count();
        let freq = ones as f64 / n as f64;
        assert!((freq - 0.75).abs() < 0.02, "frequency {freq}");
    }

    #[test]
    fn top_k_and_top_p_restrict_candidates() {
        let logits = [1.0, 5.0, 4.9, 4.8, -3.0];
        let top1 = SamplingParams {
            temperature: 2.0,
            top_k: 1,
            ..Default::default()
        };
        let mut s = Sampler::new(&top1).unwrap();
        assert!((0..100).all(|_| s.sample(&logits, &[]).unwrap() == 1));

        let top2 = SamplingParams {
            temperature: 5.0,
            top_k: 2,
            seed: [9; 32],
            ..Default::default()
        };
        let mut s = Sampler::new(&top2).unwrap();
        let drawn: Vec<u32> = (0..200).map(|_| s.sample(&logits, &[]).unwrap()).collect();
        assert!(drawn.iter().all(|t| *t == 1 || *t == 2));
        assert!(drawn.contains(&1) && drawn.contains(&2));

        // The top token alone has probability < 0.5, the top two > 0.5.
        let nucleus = SamplingParams {
            temperature: 1.0,
            top_p: 0.5,
            seed: [4; 32],
            ..Default::default()
        };
        let mut s = Sampler::new(&nucleus).unwrap();
        let drawn: Vec<u32> = (0..300).map(|_| s.sample(&logits, &[]).unwrap()).collect();
        assert!(drawn.iter().all(|t| *t == 1 || *t == 2), "{drawn:?}");

        let tiny_p = SamplingParams {
            temperature: 1.0,
            top_p: 1e-6,
            ..Default::default()
        };
        let mut s = Sampler::new(&tiny_p).unwrap();
        assert!((0..50).all(|_| s.sample(&logits, &[]).unwrap() == 1));
    }
}
