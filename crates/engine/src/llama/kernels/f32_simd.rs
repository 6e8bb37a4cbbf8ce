//! The `f32` dot product, in one fixed order of operations on every target,
//! so that a canister and the native engine compute the same bits:
//!
//! * eight partial sums: product `i` of each run of eight (`i % 8`) adds to
//!   accumulator `i % 8`, runs in order;
//! * the accumulators are summed as `((a0 + a1) + (a2 + a3)) + ((a4 + a5) +
//!   (a6 + a7))`;
//! * the products past the last whole run of eight are summed in order into
//!   a ninth value, starting from zero, which is added last.
//!
//! Every product is rounded before it is added (no fused multiply-add).
//!
//! On `wasm32` with `simd128`, [`dot`] keeps the eight accumulators in two
//! `f32x4` vectors (lanes 0–3 and 4–7) and reads sixteen values of each
//! operand per iteration: `f32x4.mul` then `f32x4.add`, lane by lane the
//! scalar order. Elsewhere it is [`dot_scalar`], plain code that LLVM
//! vectorises natively (each accumulator is a lane).

/// Values per run: one accumulator each.
const LANES: usize = 8;

/// `Σ a[i]·b[i]` over the first `min(a.len(), b.len())` values, in the
/// order of the module docs.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    {
        // SAFETY: `a` and `b` hold `n` values each.
        unsafe { dot_simd128(a, b) }
    }
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    {
        dot_scalar(a, b)
    }
}

/// The reference: [`dot`] in plain scalar code (same bits on every target).
/// Under wasm SIMD128 only the tests call it.
#[cfg_attr(
    all(target_arch = "wasm32", target_feature = "simd128"),
    allow(dead_code)
)]
pub fn dot_scalar(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f32; LANES];
    let mut ca = a.chunks_exact(LANES);
    let mut cb = b.chunks_exact(LANES);
    for (x, y) in (&mut ca).zip(&mut cb) {
        for k in 0..LANES {
            acc[k] += x[k] * y[k];
        }
    }
    let mut tail = 0.0f32;
    for (x, y) in ca.remainder().iter().zip(cb.remainder()) {
        tail += x * y;
    }
    sum_lanes(acc) + tail
}

/// The accumulators, summed in the canonical tree.
#[inline(always)]
fn sum_lanes(acc: [f32; LANES]) -> f32 {
    ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]))
}

/// # Safety
/// `a` and `b` hold the same number of values.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
#[inline(always)]
unsafe fn dot_simd128(a: &[f32], b: &[f32]) -> f32 {
    use core::arch::wasm32::*;

    let n = a.len();
    let runs = n / LANES;
    let (mut lo, mut hi) = (f32x4_splat(0.0), f32x4_splat(0.0));
    // SAFETY (whole body): run r reads values 8r .. 8r + 8 of both slices,
    // r < n / 8, so within them; `v128_load` needs no alignment.
    unsafe {
        let (mut pa, mut pb) = (a.as_ptr(), b.as_ptr());
        // Two runs per iteration, into the same accumulators in the same
        // order as one at a time: the unrolling changes no bit.
        for _ in 0..runs / 2 {
            let a0 = v128_load(pa.cast());
            let b0 = v128_load(pb.cast());
            let a1 = v128_load(pa.add(4).cast());
            let b1 = v128_load(pb.add(4).cast());
            lo = f32x4_add(lo, f32x4_mul(a0, b0));
            hi = f32x4_add(hi, f32x4_mul(a1, b1));
            let a2 = v128_load(pa.add(8).cast());
            let b2 = v128_load(pb.add(8).cast());
            let a3 = v128_load(pa.add(12).cast());
            let b3 = v128_load(pb.add(12).cast());
            lo = f32x4_add(lo, f32x4_mul(a2, b2));
            hi = f32x4_add(hi, f32x4_mul(a3, b3));
            pa = pa.add(2 * LANES);
            pb = pb.add(2 * LANES);
        }
        if runs % 2 == 1 {
            lo = f32x4_add(lo, f32x4_mul(v128_load(pa.cast()), v128_load(pb.cast())));
            hi = f32x4_add(
                hi,
                f32x4_mul(v128_load(pa.add(4).cast()), v128_load(pb.add(4).cast())),
            );
        }
    }
    let acc = [
        f32x4_extract_lane::<0>(lo),
        f32x4_extract_lane::<1>(lo),
        f32x4_extract_lane::<2>(lo),
        f32x4_extract_lane::<3>(lo),
        f32x4_extract_lane::<0>(hi),
        f32x4_extract_lane::<1>(hi),
        f32x4_extract_lane::<2>(hi),
        f32x4_extract_lane::<3>(hi),
    ];
    let mut tail = 0.0f32;
    for (x, y) in a[runs * LANES..].iter().zip(&b[runs * LANES..]) {
        tail += x * y;
    }
    sum_lanes(acc) + tail
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic pseudo-random sequence (xorshift), no dependency.
    fn values(n: usize, seed: u32) -> Vec<f32> {
        let mut s = seed.max(1);
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                (s as f32 / u32::MAX as f32 * 2.0 - 1.0) * 3.0
            })
            .collect()
    }

    #[test]
    fn dot_is_bit_identical_to_the_scalar_reference() {
        // Lengths around runs of eight and pairs of runs, ragged ones
        // included, and operands of different lengths.
        for n in [0, 1, 7, 8, 9, 15, 16, 17, 24, 33, 64, 191, 192, 576, 1536] {
            let (a, b) = (values(n, 1 + n as u32), values(n + 3, 77 + n as u32));
            assert_eq!(dot(&a, &b).to_bits(), dot_scalar(&a, &b).to_bits(), "{n}");
        }
    }

    #[test]
    fn dot_follows_the_canonical_order() {
        // Values whose sum depends on the order: 2²⁴ + 1 rounds to 2²⁴
        // (ties to even), so a 1 added to 2²⁴ alone is lost, while two 1s
        // summed first are kept. In order, one after the other, the sum
        // would be 2²⁴.
        let big = 16_777_216.0f32;
        let mut a = vec![0.0f32; 19];
        a[0] = big; // lane 0
        a[8] = 1.0; // lane 0 again: lost
        a[1] = 1.0; // lane 1: meets lane 0 alone, lost
        a[2] = 1.0; // lanes 2 and 3 make 2 first: kept
        a[3] = 1.0;
        a[16] = 1.0; // the tail, added last: 2²⁴ + 3 rounds to 2²⁴ + 4
        let ones = vec![1.0f32; 19];
        let expected = ((big + 1.0) + (1.0 + 1.0)) + 1.0;
        assert_eq!(dot(&a, &ones), expected);
        assert_eq!(dot_scalar(&a, &ones), expected);
        assert_eq!(expected, big + 4.0);
    }

    #[test]
    fn dot_is_the_dot_product() {
        let a: Vec<f32> = (1..=20).map(|i| i as f32).collect();
        let b = vec![2.0f32; 20];
        assert_eq!(dot(&a, &b), 420.0);
        assert_eq!(dot(&a[..3], &b), 12.0);
        assert_eq!(dot(&[], &b), 0.0);
    }
}
