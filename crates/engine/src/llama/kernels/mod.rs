//! Numeric kernels of the llama forward pass: 8-bit block quantisation
//! (Q8_0-like: blocks of [`BLOCK`] values, one `f32` scale each), the int8
//! dot product, and the `f32` helpers (dot, RMS norm, softmax, SiLU, RoPE).
//!
//! **Blocks.** A row of `cols` values (a multiple of [`BLOCK`]) has
//! `cols / 32` blocks. Its first `cols / 128 × 128` values form groups of
//! four blocks, *interleaved*: within each 16 values of a group, positions
//! `2k, 2k+1, 8+2k, 9+2k` belong to block `k` of the group (so each block
//! still holds 32 values). The remaining blocks (fewer than four) are
//! contiguous runs of 32. Interleaving is what makes the wasm kernel cheap:
//! `i32x4.dot_i16x8_s` over 16 values yields the four blocks' partial sums
//! in its four lanes, with no horizontal sums. [`block_of`] gives a value's
//! block.
//!
//! **Activations** are quantised the same way, per row, into `i16` values in
//! `-127..=127` (ready for the dot product: no widening per use), once per
//! row and reused by every output row.
//!
//! The int8 dot product has one *canonical* order of floating-point
//! operations, so that every target computes the same bits:
//!
//! * within a block the products are summed as integers (exact, in any order);
//! * block `b` adds `isum_b as f32 * (dw_b * dx_b)` to accumulator lane `b % 4`,
//!   in the order of `b`;
//! * the result is `(lane0 + lane1) + (lane2 + lane3)`.
//!
//! [`simd`] implements it with wasm SIMD128 (plain `simd128`, never relaxed
//! SIMD) on `wasm32`, AVX2 on `x86_64` (detected at run time), and portable
//! scalar code elsewhere; the scalar [`dot_q8_scalar`] is the reference
//! every implementation is tested against. Rounding to the nearest integer
//! uses the `1.5 × 2²³` addition (exact IEEE arithmetic, ties to even), and
//! transcendentals are the project's own [`exp`] (see [`vector`]) or come from
//! `libm`, the same on every target, for the same reason.

mod simd;
mod vector;

pub use vector::{axpy, axpy_head, dot_f32, dot_f32_head, exp, silu_mul, softmax};

/// Values per quantisation block.
pub const BLOCK: usize = 32;

/// Blocks per interleaved group.
pub const GROUP_BLOCKS: usize = 4;

/// Values per interleaved group.
pub const GROUP: usize = BLOCK * GROUP_BLOCKS;

/// Largest magnitude of a quantised value. Symmetric (`-127..=127`), so that
/// two products of 8-bit values always fit in an `i16`.
pub const Q_MAX: f32 = 127.0;

/// `1.5 × 2²³`: added to an `f32` of magnitude below `2²²`, the sum's low
/// mantissa bits are the value rounded to the nearest integer, ties to even.
const ROUND_MAGIC: f32 = 12_582_912.0;

/// Block (index within its row of `cols` values) of the value at `col`.
pub fn block_of(col: usize, cols: usize) -> usize {
    let grouped = cols / GROUP * GROUP;
    if col < grouped {
        col / GROUP * GROUP_BLOCKS + (col % 8) / 2
    } else {
        grouped / BLOCK + (col - grouped) / BLOCK
    }
}

/// `round_ties_even(v)` as an integer, for `|v| < 2²²`.
#[inline(always)]
fn round_small(v: f32) -> i32 {
    ((v + ROUND_MAGIC).to_bits() as i32).wrapping_sub(ROUND_MAGIC.to_bits() as i32)
}

/// Scale of a block whose largest magnitude has the bits `amax_bits`
/// (`|v|.to_bits()`, which order like the magnitudes), and its inverse;
/// `(0, 0)` for an all-zero or non-finite block.
#[inline(always)]
fn block_scale(amax_bits: u32) -> (f32, f32) {
    let amax = f32::from_bits(amax_bits);
    if amax_bits == 0 || amax_bits >= f32::INFINITY.to_bits() {
        (0.0, 0.0)
    } else {
        (amax / Q_MAX, Q_MAX / amax)
    }
}

/// Quantises each row of `cols` values of `values` (a whole number of
/// rows, `cols` a multiple of [`BLOCK`]) block by block into `quants` and
/// one scale per block into `scales`: `value ≈ quant × scale`,
/// `scale = max|value| / 127` (0 for a block of zeros or with a non-finite
/// value, whose quants are then 0).
pub fn quantize_blocks(values: &[f32], cols: usize, quants: &mut [i8], scales: &mut [f32]) {
    // |quant| ≤ 127: the cast is exact.
    let cast = |q: i32| q as i8;
    quantize_rows(values, cols, quants, scales, cast, |v, q, d| {
        quantize_group(v, q, d, cast)
    });
}

/// [`quantize_blocks`] into `i16` quants (activations, ready for the dot
/// product).
pub fn quantize_activations(values: &[f32], cols: usize, quants: &mut [i16], scales: &mut [f32]) {
    let cast = |q: i32| q as i16;
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    let group = |v: &[f32], q: &mut [i16], d: &mut [f32]| {
        // SAFETY: `quantize_rows` passes whole groups.
        unsafe { simd::quantize_group_i16(v, q, d) };
        zero_unscaled_blocks(q, d, cast);
    };
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    let group = |v: &[f32], q: &mut [i16], d: &mut [f32]| quantize_group(v, q, d, cast);
    quantize_rows(values, cols, quants, scales, cast, group);
}

/// One interleaved group of [`GROUP`] values into quants and four scales.
#[inline(always)]
fn quantize_group<Q: Copy>(v: &[f32], q: &mut [Q], d: &mut [f32], cast: impl Fn(i32) -> Q) {
    let mut amax = [0u32; GROUP_BLOCKS];
    for (i, &x) in v.iter().enumerate() {
        let k = (i % 8) / 2;
        amax[k] = amax[k].max(x.to_bits() & 0x7fff_ffff);
    }
    let mut inv = [0.0f32; GROUP_BLOCKS];
    for k in 0..GROUP_BLOCKS {
        (d[k], inv[k]) = block_scale(amax[k]);
    }
    for (i, (q, &x)) in q.iter_mut().zip(v).enumerate() {
        *q = cast(round_small(x * inv[(i % 8) / 2]));
    }
    zero_unscaled_blocks(q, d, cast);
}

/// A block without a scale (zeros, or a non-finite value that made its
/// products NaN) holds zeros.
#[inline(always)]
fn zero_unscaled_blocks<Q: Copy>(q: &mut [Q], d: &[f32], cast: impl Fn(i32) -> Q) {
    for k in (0..GROUP_BLOCKS).filter(|&k| d[k] == 0.0) {
        for (i, q) in q.iter_mut().enumerate() {
            if (i % 8) / 2 == k {
                *q = cast(0);
            }
        }
    }
}

#[inline(always)]
fn quantize_rows<Q: Copy>(
    values: &[f32],
    cols: usize,
    quants: &mut [Q],
    scales: &mut [f32],
    cast: impl Fn(i32) -> Q,
    group: impl Fn(&[f32], &mut [Q], &mut [f32]),
) {
    if cols == 0 {
        return;
    }
    let blocks = cols / BLOCK;
    let groups = cols / GROUP;
    for ((row, q), d) in values
        .chunks_exact(cols)
        .zip(quants.chunks_exact_mut(cols))
        .zip(scales.chunks_exact_mut(blocks))
    {
        for ((v, q), d) in row
            .chunks_exact(GROUP)
            .zip(q.chunks_exact_mut(GROUP))
            .zip(d.chunks_exact_mut(GROUP_BLOCKS))
        {
            group(v, q, d);
        }
        let tail = groups * GROUP;
        for ((v, q), d) in row[tail..]
            .chunks_exact(BLOCK)
            .zip(q[tail..].chunks_exact_mut(BLOCK))
            .zip(d[groups * GROUP_BLOCKS..].iter_mut())
        {
            let amax = v.iter().fold(0u32, |m, x| m.max(x.to_bits() & 0x7fff_ffff));
            let (scale, inv) = block_scale(amax);
            *d = scale;
            for (q, &x) in q.iter_mut().zip(v) {
                *q = cast(if scale == 0.0 {
                    0
                } else {
                    round_small(x * inv)
                });
            }
        }
    }
}

/// Σ_b `dw[b] · dx[b] · Σ_{i in b} w[i] · x[i]` over the `dw.len()` blocks
/// of one row, in the canonical order (see the module docs). `w` and `x`
/// hold `dw.len() × 32` values and `dx` as many scales as `dw`, blocks laid
/// out as [`block_of`] says for a row of that length.
///
/// # Panics
/// If the lengths disagree.
#[inline(always)]
pub fn dot_q8(w: &[i8], dw: &[f32], x: &[i16], dx: &[f32]) -> f32 {
    let n = dw.len() * BLOCK;
    assert!(w.len() == n && x.len() == n && dx.len() == dw.len());
    // SAFETY: the lengths were just checked.
    unsafe { simd::dot_q8(w, dw, x, dx) }
}

/// [`dot_q8`] of four rows of weights with one row of activations:
/// `out[r]` is row `r` of `w` (`4 × cols` quants, `dw` their scales)
/// dotted with `x` (`cols` activations, `dx`), bit for bit what [`dot_q8`]
/// gives. The wasm kernel loads each activation vector once for the four
/// rows (decoding); elsewhere it is four calls of [`dot_q8`].
///
/// # Panics
/// If the lengths disagree or `cols` is not a multiple of 32.
#[inline(always)]
pub fn dot_q8_4x1(w: &[i8], dw: &[f32], x: &[i16], dx: &[f32], cols: usize) -> [f32; 4] {
    let blocks = cols / BLOCK;
    assert!(
        cols.is_multiple_of(BLOCK)
            && w.len() == 4 * cols
            && x.len() == cols
            && dw.len() == 4 * blocks
            && dx.len() == blocks
    );
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    {
        // SAFETY: the lengths were just checked.
        unsafe { simd::dot_q8_4x1(w, dw, x, dx, cols) }
    }
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    {
        std::array::from_fn(|r| {
            dot_q8(
                &w[r * cols..(r + 1) * cols],
                &dw[r * blocks..(r + 1) * blocks],
                x,
                dx,
            )
        })
    }
}

/// [`dot_q8`] of four rows of weights with four rows of activations at
/// once: `out[r][t]` is row `r` of `w` (`4 × cols` quants, `dw` their
/// scales) dotted with row `t` of `x` (`4 × cols`, `dx`), bit for bit what
/// [`dot_q8`] gives for that pair. The wasm kernel loads each weight and
/// activation vector once for the 16 products (a batched prefill reads the
/// weights once per four tokens); elsewhere it is 16 calls of [`dot_q8`].
///
/// # Panics
/// If the lengths disagree or `cols` is not a multiple of 32.
#[inline(always)]
pub fn dot_q8_4x4(w: &[i8], dw: &[f32], x: &[i16], dx: &[f32], cols: usize) -> [[f32; 4]; 4] {
    let blocks = cols / BLOCK;
    assert!(
        cols.is_multiple_of(BLOCK)
            && w.len() == 4 * cols
            && x.len() == 4 * cols
            && dw.len() == 4 * blocks
            && dx.len() == 4 * blocks
    );
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    {
        // SAFETY: the lengths were just checked.
        unsafe { simd::dot_q8_4x4(w, dw, x, dx, cols) }
    }
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    {
        let row = |r: usize| {
            (
                &w[r * cols..(r + 1) * cols],
                &dw[r * blocks..(r + 1) * blocks],
            )
        };
        let act = |t: usize| {
            (
                &x[t * cols..(t + 1) * cols],
                &dx[t * blocks..(t + 1) * blocks],
            )
        };
        std::array::from_fn(|r| {
            std::array::from_fn(|t| {
                let ((w, dw), (x, dx)) = (row(r), act(t));
                dot_q8(w, dw, x, dx)
            })
        })
    }
}

/// [`dot_q8`] of eight rows of weights with four rows of activations:
/// `out[r][t]` is row `r` of `w` (`8 × cols` quants, `dw` their scales)
/// dotted with row `t` of `x` (`4 × cols`, `dx`), bit for bit what
/// [`dot_q8`] gives for that pair. The wasm kernel keeps the four
/// activation rows of a group in locals while the eight weight rows stream
/// past (prefill); elsewhere it is 32 calls of [`dot_q8`].
///
/// # Panics
/// If the lengths disagree or `cols` is not a multiple of 32.
#[inline(always)]
pub fn dot_q8_8x4(w: &[i8], dw: &[f32], x: &[i16], dx: &[f32], cols: usize) -> [[f32; 4]; 8] {
    let blocks = cols / BLOCK;
    assert!(
        cols.is_multiple_of(BLOCK)
            && w.len() == 8 * cols
            && x.len() == 4 * cols
            && dw.len() == 8 * blocks
            && dx.len() == 4 * blocks
    );
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    {
        // SAFETY: the lengths were just checked.
        unsafe { simd::dot_q8_8x4(w, dw, x, dx, cols) }
    }
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    {
        std::array::from_fn(|r| {
            std::array::from_fn(|t| {
                dot_q8(
                    &w[r * cols..(r + 1) * cols],
                    &dw[r * blocks..(r + 1) * blocks],
                    &x[t * cols..(t + 1) * cols],
                    &dx[t * blocks..(t + 1) * blocks],
                )
            })
        })
    }
}

/// The canonical int8 dot product in plain scalar code: the reference.
/// Same contract as [`dot_q8`].
pub fn dot_q8_scalar(w: &[i8], dw: &[f32], x: &[i16], dx: &[f32]) -> f32 {
    let blocks = dw.len();
    let groups = blocks / GROUP_BLOCKS;
    let mut lanes = [0.0f32; 4];
    for g in 0..groups {
        let mut isum = [0i32; GROUP_BLOCKS];
        let r = g * GROUP..(g + 1) * GROUP;
        for (i, (&a, &b)) in w[r.clone()].iter().zip(&x[r]).enumerate() {
            isum[(i % 8) / 2] += i32::from(a) * i32::from(b);
        }
        for (k, &s) in isum.iter().enumerate() {
            let b = g * GROUP_BLOCKS + k;
            lanes[k] += s as f32 * (dw[b] * dx[b]);
        }
    }
    for b in groups * GROUP_BLOCKS..blocks {
        let r = b * BLOCK..(b + 1) * BLOCK;
        lanes[b % 4] += block_isum(&w[r.clone()], &x[r]) as f32 * (dw[b] * dx[b]);
    }
    (lanes[0] + lanes[1]) + (lanes[2] + lanes[3])
}

/// Σ w·x over one contiguous block.
#[inline]
fn block_isum(w: &[i8], x: &[i16]) -> i32 {
    w.iter()
        .zip(x)
        .map(|(&a, &b)| i32::from(a) * i32::from(b))
        .sum()
}

/// RMS norm of each row of `x` (rows of `weight.len()` values) into `out`:
/// `x / sqrt(mean(x²) + eps) · weight`, as the exported graph computes it.
pub fn rms_norm(x: &[f32], weight: &[f32], eps: f32, out: &mut [f32]) {
    let n = weight.len();
    if n == 0 {
        return;
    }
    for (row, out) in x.chunks_exact(n).zip(out.chunks_exact_mut(n)) {
        let mean_sq = dot_f32(row, row) / n as f32;
        let inv = 1.0 / libm::sqrtf(mean_sq + eps);
        for ((o, &v), &w) in out.iter_mut().zip(row).zip(weight) {
            *o = (v * inv) * w;
        }
    }
}

/// Rotary embedding ("rotate half") of `heads` consecutive vectors of
/// `cos.len()` values: `x·cos + rotate_half(x)·sin`, where `cos`/`sin`
/// already span the whole head (`[freqs, freqs]`).
pub fn rope(x: &mut [f32], cos: &[f32], sin: &[f32]) {
    let d = cos.len();
    let half = d / 2;
    if half == 0 {
        return;
    }
    for head in x.chunks_exact_mut(d) {
        for i in 0..half {
            let (a, b) = (head[i], head[i + half]);
            head[i] = a * cos[i] + (-b) * sin[i];
            head[i + half] = b * cos[i + half] + a * sin[i + half];
        }
    }
}

/// `cos` and `sin` of `position × inv_freq`, each `[freqs, freqs]`.
pub fn rope_tables(position: usize, inv_freq: &[f32], cos: &mut [f32], sin: &mut [f32]) {
    let half = inv_freq.len();
    let p = position as f32;
    for (i, &f) in inv_freq.iter().enumerate() {
        let angle = p * f;
        let (s, c) = (libm::sinf(angle), libm::cosf(angle));
        cos[i] = c;
        cos[i + half] = c;
        sin[i] = s;
        sin[i + half] = s;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic pseudo-random sequence (xorshift), no dependency.
    fn values(n: usize, seed: u32, scale: f32) -> Vec<f32> {
        let mut s = seed.max(1);
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                (s as f32 / u32::MAX as f32 * 2.0 - 1.0) * scale
            })
            .collect()
    }

    fn quantize(v: &[f32]) -> (Vec<i8>, Vec<f32>) {
        let mut q = vec![0; v.len()];
        let mut d = vec![0.0; v.len() / BLOCK];
        quantize_blocks(v, v.len(), &mut q, &mut d);
        (q, d)
    }

    fn activations(v: &[f32]) -> (Vec<i16>, Vec<f32>) {
        let mut q = vec![0; v.len()];
        let mut d = vec![0.0; v.len() / BLOCK];
        quantize_activations(v, v.len(), &mut q, &mut d);
        (q, d)
    }

    #[test]
    fn blocks_interleave_in_groups_of_four_then_run_contiguously() {
        // 18 blocks: four groups of 128 values, then two plain blocks.
        let cols = 576;
        let mut count = vec![0; cols / BLOCK];
        for c in 0..cols {
            count[block_of(c, cols)] += 1;
        }
        assert!(count.iter().all(|&n| n == BLOCK));
        assert_eq!(
            (0..16).map(|c| block_of(c, cols)).collect::<Vec<_>>(),
            [0, 0, 1, 1, 2, 2, 3, 3, 0, 0, 1, 1, 2, 2, 3, 3]
        );
        assert_eq!(block_of(128 + 9, cols), 4);
        assert_eq!(block_of(512, cols), 16);
        assert_eq!(block_of(575, cols), 17);
        // A row of two blocks has no group.
        assert_eq!(block_of(40, 64), 1);
    }

    #[test]
    fn quantization_round_trips_within_half_a_step() {
        for cols in [4 * BLOCK, 6 * BLOCK] {
            let mut v = values(2 * cols, 7 + cols as u32, 3.0);
            v[5] = -3.5; // the block's extreme maps to -127 exactly
            for c in 0..cols {
                if block_of(c, cols) == 1 {
                    v[cols + c] = 0.0;
                }
            }
            v[cols + 40] = f32::NAN;
            let (q, d) = {
                let mut q = vec![0; v.len()];
                let mut d = vec![0.0; v.len() / BLOCK];
                quantize_blocks(&v, cols, &mut q, &mut d);
                (q, d)
            };
            let blocks = cols / BLOCK;
            assert_eq!(q[5], -127);
            assert_eq!(d[blocks + 1], 0.0);
            let nan_block = blocks + block_of(40, cols);
            assert_eq!(d[nan_block], 0.0);
            assert!(q.iter().all(|&q| q != i8::MIN));
            for (i, &x) in v.iter().enumerate() {
                let b = i / cols * blocks + block_of(i % cols, cols);
                let back = f32::from(q[i]) * d[b];
                if b == nan_block {
                    assert_eq!(q[i], 0);
                } else {
                    assert!((back - x).abs() <= d[b] * 0.5 + 1e-6, "{x} -> {back}");
                }
            }
            // Activations are the same numbers in i16.
            let mut qa = vec![0i16; v.len()];
            let mut da = vec![0.0; v.len() / BLOCK];
            quantize_activations(&v, cols, &mut qa, &mut da);
            assert_eq!(da, d);
            assert!(qa.iter().zip(&q).all(|(&a, &b)| a == i16::from(b)));
        }
    }

    #[test]
    fn rounding_is_to_nearest_even() {
        for v in [
            0.5f32, 1.5, 2.5, -0.5, -1.5, 126.5, -126.49, 3.0, -127.0, 0.0,
        ] {
            assert_eq!(round_small(v), v.round_ties_even() as i32, "{v}");
        }
    }

    #[test]
    fn simd_dot_is_bit_identical_to_the_scalar_reference() {
        // Block counts around the 4-block grouping, including ragged ones,
        // and extreme values (±127 everywhere) that must not overflow.
        for blocks in [1, 2, 3, 4, 5, 7, 8, 18, 48, 49] {
            let n = blocks * BLOCK;
            let (w, dw) = quantize(&values(n, blocks as u32, 1.0));
            let (x, dx) = activations(&values(n, 99 + blocks as u32, 5.0));
            assert_eq!(
                dot_q8(&w, &dw, &x, &dx).to_bits(),
                dot_q8_scalar(&w, &dw, &x, &dx).to_bits(),
                "{blocks} blocks"
            );
            let ones = vec![127i8; n];
            let neg = vec![-127i16; n];
            let d = vec![1.0; blocks];
            assert_eq!(dot_q8(&ones, &d, &neg, &d), -(127.0 * 127.0 * n as f32));
        }
    }

    #[test]
    fn dot_scales_each_block_by_its_own_scales() {
        // One-hot rows: the product picks one value and its block's scales.
        let cols = 6 * BLOCK;
        let dw: Vec<f32> = (0..6).map(|b| 1.0 + b as f32).collect();
        let dx: Vec<f32> = (0..6).map(|b| 0.5 + b as f32).collect();
        for c in [0, 3, 9, 100, 127, 130, 150, 170] {
            let mut w = vec![0i8; cols];
            let mut x = vec![0i16; cols];
            w[c] = 3;
            x[c] = -5;
            let b = block_of(c, cols);
            assert_eq!(
                dot_q8(&w, &dw, &x, &dx),
                -15.0 * dw[b] * dx[b],
                "column {c}"
            );
            assert_eq!(dot_q8_scalar(&w, &dw, &x, &dx), -15.0 * dw[b] * dx[b]);
        }
    }

    #[test]
    fn q8_dot_approximates_the_f32_dot() {
        let n = 18 * BLOCK;
        let (a, b) = (values(n, 3, 1.0), values(n, 4, 2.0));
        let (w, dw) = quantize(&a);
        let (x, dx) = activations(&b);
        let exact = dot_f32(&a, &b);
        let approx = dot_q8(&w, &dw, &x, &dx);
        let norm = dot_f32(&a, &a).sqrt() * dot_f32(&b, &b).sqrt();
        assert!((exact - approx).abs() < 0.01 * norm, "{exact} vs {approx}");
    }

    #[test]
    fn softmax_and_rope_behave() {
        let mut x = vec![1.0, 2.0, 3.0, f32::NEG_INFINITY];
        softmax(&mut x);
        assert!((x.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert_eq!(x[3], 0.0);
        assert!(x[2] > x[1] && x[1] > x[0]);

        // Rotation keeps the norm; position 0 is the identity.
        let inv_freq = [1.0, 0.1];
        let (mut cos, mut sin) = ([0.0; 4], [0.0; 4]);
        let v = [0.3, -1.0, 2.0, 0.5];
        rope_tables(0, &inv_freq, &mut cos, &mut sin);
        let mut y = v;
        rope(&mut y, &cos, &sin);
        assert_eq!(y, v);
        rope_tables(7, &inv_freq, &mut cos, &mut sin);
        rope(&mut y, &cos, &sin);
        assert!((dot_f32(&y, &y) - dot_f32(&v, &v)).abs() < 1e-5);
        assert_ne!(y, v);
    }
}
