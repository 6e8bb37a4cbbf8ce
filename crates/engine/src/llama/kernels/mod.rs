//! Numeric kernels of the llama forward pass: 8-bit block quantisation
//! (Q8_0-like: blocks of [`BLOCK`] values, one `f32` scale each), the int8
//! dot product, and the `f32` helpers (dot, RMS norm, softmax, SiLU, RoPE).
//!
//! The int8 dot product has one *canonical* order of floating-point
//! operations, so that every target computes the same bits:
//!
//! * within a block the products are summed as integers (exact, in any order);
//! * block `b` adds `isum_b as f32 * (dw_b * dx_b)` to accumulator lane `b % 4`;
//! * the result is `(lane0 + lane1) + (lane2 + lane3)`.
//!
//! [`simd`] implements it with wasm SIMD128 on `wasm32`, AVX2 on `x86_64`
//! (detected at run time), and portable scalar code elsewhere; the scalar
//! [`dot_q8_scalar`] is the reference every implementation is tested
//! against. Transcendentals come from `libm` on every target, for the same
//! reason.

mod simd;

/// Values per quantisation block.
pub const BLOCK: usize = 32;

/// Largest magnitude of a quantised value. Symmetric (`-127..=127`), so that
/// two products of 8-bit values always fit in an `i16`, which the SIMD
/// kernels rely on.
pub const Q_MAX: f32 = 127.0;

/// Quantises `values` (a multiple of [`BLOCK`] long) block by block into
/// `quants` and one scale per block into `scales`:
/// `value ≈ quant × scale`, `scale = max|value| / 127`.
pub fn quantize_blocks(values: &[f32], quants: &mut [i8], scales: &mut [f32]) {
    for ((block, q), d) in values
        .chunks_exact(BLOCK)
        .zip(quants.chunks_exact_mut(BLOCK))
        .zip(scales.iter_mut())
    {
        let amax = block.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        if amax == 0.0 || !amax.is_finite() {
            *d = 0.0;
            q.fill(0);
            continue;
        }
        *d = amax / Q_MAX;
        let inv = Q_MAX / amax;
        for (q, &v) in q.iter_mut().zip(block) {
            // `as` saturates; the product is within ±127 up to rounding.
            *q = (v * inv).round_ties_even() as i8;
        }
    }
}

/// Σ_b `dw[b] · dx[b] · Σ_i w[32b+i] · x[32b+i]` over the blocks that
/// every slice covers, in the canonical order (see the module docs).
#[inline]
pub fn dot_q8(w: &[i8], dw: &[f32], x: &[i8], dx: &[f32]) -> f32 {
    let blocks = dw
        .len()
        .min(dx.len())
        .min(w.len() / BLOCK)
        .min(x.len() / BLOCK);
    simd::dot_q8(
        &w[..blocks * BLOCK],
        &dw[..blocks],
        &x[..blocks * BLOCK],
        &dx[..blocks],
    )
}

/// The canonical int8 dot product in plain scalar code: the reference.
pub fn dot_q8_scalar(w: &[i8], dw: &[f32], x: &[i8], dx: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 4];
    for (b, ((wb, xb), (&sw, &sx))) in w
        .chunks_exact(BLOCK)
        .zip(x.chunks_exact(BLOCK))
        .zip(dw.iter().zip(dx))
        .enumerate()
    {
        lanes[b % 4] += block_isum(wb, xb) as f32 * (sw * sx);
    }
    (lanes[0] + lanes[1]) + (lanes[2] + lanes[3])
}

#[inline]
fn block_isum(w: &[i8], x: &[i8]) -> i32 {
    w.iter()
        .zip(x)
        .map(|(&a, &b)| i32::from(a) * i32::from(b))
        .sum()
}

/// `Σ a[i]·b[i]` with eight partial sums (vectorisable), in a fixed order.
#[inline]
pub fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f32; 8];
    let mut ca = a.chunks_exact(8);
    let mut cb = b.chunks_exact(8);
    for (x, y) in (&mut ca).zip(&mut cb) {
        for k in 0..8 {
            acc[k] += x[k] * y[k];
        }
    }
    let mut tail = 0.0;
    for (x, y) in ca.remainder().iter().zip(cb.remainder()) {
        tail += x * y;
    }
    ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7])) + tail
}

/// `y += a · x`.
#[inline]
pub fn axpy(a: f32, x: &[f32], y: &mut [f32]) {
    for (y, &x) in y.iter_mut().zip(x) {
        *y += a * x;
    }
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

/// In-place softmax.
pub fn softmax(x: &mut [f32]) {
    let max = x.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    let mut sum = 0.0;
    for v in x.iter_mut() {
        *v = libm::expf(*v - max);
        sum += *v;
    }
    let inv = 1.0 / sum;
    for v in x.iter_mut() {
        *v *= inv;
    }
}

/// `gate ← silu(gate) · up`, element-wise.
pub fn silu_mul(gate: &mut [f32], up: &[f32]) {
    for (g, &u) in gate.iter_mut().zip(up) {
        let sig = 1.0 / (1.0 + libm::expf(-*g));
        *g = *g * sig * u;
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
        quantize_blocks(v, &mut q, &mut d);
        (q, d)
    }

    #[test]
    fn quantization_round_trips_within_half_a_step() {
        let mut v = values(4 * BLOCK, 7, 3.0);
        v[5] = -3.5; // the block's extreme maps to -127 exactly
        v[BLOCK..2 * BLOCK].fill(0.0);
        let (q, d) = quantize(&v);
        assert_eq!(q[5], -127);
        assert_eq!(d[1], 0.0);
        assert!(q.iter().all(|&q| q != i8::MIN));
        for (b, block) in v.chunks(BLOCK).enumerate() {
            for (i, &x) in block.iter().enumerate() {
                let back = f32::from(q[b * BLOCK + i]) * d[b];
                assert!((back - x).abs() <= d[b] * 0.5 + 1e-6, "{x} -> {back}");
            }
        }
    }

    #[test]
    fn simd_dot_is_bit_identical_to_the_scalar_reference() {
        // Block counts around the 4-block grouping, including ragged ones,
        // and extreme values (±127 everywhere) that must not overflow.
        for blocks in [1, 2, 3, 4, 5, 7, 8, 18, 48, 49] {
            let n = blocks * BLOCK;
            let (w, dw) = quantize(&values(n, blocks as u32, 1.0));
            let (x, dx) = quantize(&values(n, 99 + blocks as u32, 5.0));
            assert_eq!(
                dot_q8(&w, &dw, &x, &dx).to_bits(),
                dot_q8_scalar(&w, &dw, &x, &dx).to_bits(),
                "{blocks} blocks"
            );
            let ones = vec![127i8; n];
            let neg = vec![-127i8; n];
            let d = vec![1.0; blocks];
            assert_eq!(dot_q8(&ones, &d, &neg, &d), -(127.0 * 127.0 * n as f32));
        }
    }

    #[test]
    fn q8_dot_approximates_the_f32_dot() {
        let n = 18 * BLOCK;
        let (a, b) = (values(n, 3, 1.0), values(n, 4, 2.0));
        let (w, dw) = quantize(&a);
        let (x, dx) = quantize(&b);
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
