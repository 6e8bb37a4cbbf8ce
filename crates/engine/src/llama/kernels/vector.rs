//! The `f32` work around the matrix products: dot products and `axpy` of
//! attention, softmax, SiLU and the exponential they need.
//!
//! On the IC each wasm instruction is paid for and a scalar `f32` add or
//! multiply costs two, so softmax, SiLU and attention's dot products and
//! `axpy` run four lanes at a time with wasm SIMD128 on `wasm32` (the dot
//! product of a weight matrix's rows is a plain loop that LLVM vectorises
//! itself: cheaper there). Every function has one *canonical* order of operations:
//! lane `i % 4` of four running values takes element `i`, lanes are
//! combined as `(l0 + l1) + (l2 + l3)`, and each element goes through the
//! same IEEE operations. The SIMD code and the portable code (every other
//! target, and the tails of the SIMD code) both follow it, so a canister
//! computes the bits the native engine computes.
//!
//! [`exp`] is the project's own: `2^k · p(r)` with `k = round(x / ln 2)`,
//! `r = x − k·ln 2` (in two parts, Cody–Waite) and `p` the degree-7 Taylor
//! polynomial of `e^r` on `|r| ≤ ln 2 / 2` (error below 1e-8, under an
//! `f32` ulp); below -87 it is 0 (so a masked `-inf` score weighs
//! nothing), above 88 it stays at `e^88`. Only `+ − ×` and bit
//! operations: no table, no division, the same on every target.

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
use core::arch::wasm32::*;

use super::ROUND_MAGIC;

const LOG2_E: f32 = std::f32::consts::LOG2_E;
/// `ln 2` in two parts: `k · LN2_HI` is exact for `|k| < 2¹⁵`.
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;
const EXP_MIN: f32 = -87.0;
const EXP_MAX: f32 = 88.0;
/// `1/7!, 1/6!, …, 1/1!, 1/0!`, for Horner's scheme.
const EXP_POLY: [f32; 8] = [
    1.0 / 5040.0,
    1.0 / 720.0,
    1.0 / 120.0,
    1.0 / 24.0,
    1.0 / 6.0,
    0.5,
    1.0,
    1.0,
];

/// `if a < b { b } else { a }` (wasm's `pmax`).
#[inline(always)]
fn pmax(a: f32, b: f32) -> f32 {
    if a < b {
        b
    } else {
        a
    }
}

/// `if b < a { b } else { a }` (wasm's `pmin`).
#[inline(always)]
fn pmin(a: f32, b: f32) -> f32 {
    if b < a {
        b
    } else {
        a
    }
}

/// `e^x`, the canonical way (see the module docs); one lane of [`exp4`].
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    if x < EXP_MIN {
        return 0.0;
    }
    let x = pmin(x, EXP_MAX);
    let t = x * LOG2_E + ROUND_MAGIC;
    let k = t - ROUND_MAGIC;
    let ki = (t.to_bits() as i32).wrapping_sub(ROUND_MAGIC.to_bits() as i32);
    let r = (x - k * LN2_HI) - k * LN2_LO;
    let mut p = EXP_POLY[0];
    for &c in &EXP_POLY[1..] {
        p = p * r + c;
    }
    p * f32::from_bits((ki.wrapping_add(127) as u32) << 23)
}

/// [`exp`] of four lanes.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
#[inline(always)]
fn exp4(x: v128) -> v128 {
    let underflow = f32x4_lt(x, f32x4_splat(EXP_MIN));
    let x = f32x4_pmin(f32x4_pmax(x, f32x4_splat(EXP_MIN)), f32x4_splat(EXP_MAX));
    let magic = f32x4_splat(ROUND_MAGIC);
    let t = f32x4_add(f32x4_mul(x, f32x4_splat(LOG2_E)), magic);
    let k = f32x4_sub(t, magic);
    let ki = i32x4_sub(t, magic);
    let r = f32x4_sub(
        f32x4_sub(x, f32x4_mul(k, f32x4_splat(LN2_HI))),
        f32x4_mul(k, f32x4_splat(LN2_LO)),
    );
    let mut p = f32x4_splat(EXP_POLY[0]);
    for &c in &EXP_POLY[1..] {
        p = f32x4_add(f32x4_mul(p, r), f32x4_splat(c));
    }
    let e = f32x4_mul(p, i32x4_shl(i32x4_add(ki, i32x4_splat(127)), 23));
    v128_andnot(e, underflow)
}

/// `Σ a[i]·b[i]` over the shorter length: eight partial sums (lane
/// `i % 8` of each chunk of eight), combined as
/// `((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))`, plus the remaining
/// products summed in order. Plain code: LLVM vectorises it into wasm
/// SIMD128 by itself, and an explicit `f32x4` version measured more
/// instructions in the canister.
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
    combine(&acc, ca.remainder(), cb.remainder())
}

/// The end of [`dot_f32`]: the eight partial sums combined, plus the
/// remaining products summed in order.
#[inline(always)]
fn combine(acc: &[f32; 8], a: &[f32], b: &[f32]) -> f32 {
    let mut tail = 0.0;
    for (x, y) in a.iter().zip(b) {
        tail += x * y;
    }
    ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7])) + tail
}

/// `y += a · x`, element by element (plain code, vectorised by LLVM).
#[inline]
pub fn axpy(a: f32, x: &[f32], y: &mut [f32]) {
    for (y, &x) in y.iter_mut().zip(x) {
        *y += a * x;
    }
}

/// [`dot_f32`] (the same bits) for the short vectors of attention (one
/// head's keys): explicit wasm SIMD128, which in the canister measured
/// fewer instructions than the compiler's own vectorisation on vectors of a
/// head's size, and more on the rows of a weight matrix.
#[inline]
pub fn dot_f32_head(a: &[f32], b: &[f32]) -> f32 {
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    {
        let n = a.len().min(b.len());
        let (a, b) = (&a[..n], &b[..n]);
        let mut ca = a.chunks_exact(8);
        let mut cb = b.chunks_exact(8);
        let (mut lo, mut hi) = (f32x4_splat(0.0), f32x4_splat(0.0));
        for (x, y) in (&mut ca).zip(&mut cb) {
            // SAFETY: both chunks hold eight values; no alignment needed.
            let (x0, x1, y0, y1) = unsafe {
                (
                    v128_load(x.as_ptr().cast()),
                    v128_load(x.as_ptr().add(4).cast()),
                    v128_load(y.as_ptr().cast()),
                    v128_load(y.as_ptr().add(4).cast()),
                )
            };
            lo = f32x4_add(lo, f32x4_mul(x0, y0));
            hi = f32x4_add(hi, f32x4_mul(x1, y1));
        }
        let (lo, hi) = (lanes(lo), lanes(hi));
        let acc = [lo[0], lo[1], lo[2], lo[3], hi[0], hi[1], hi[2], hi[3]];
        combine(&acc, ca.remainder(), cb.remainder())
    }
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    {
        dot_f32(a, b)
    }
}

/// [`axpy`] (the same bits) for one head's values: explicit wasm SIMD128.
#[inline]
pub fn axpy_head(a: f32, x: &[f32], y: &mut [f32]) {
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    {
        let n = x.len().min(y.len());
        let done = n / 4 * 4;
        let av = f32x4_splat(a);
        for (x, y) in x[..done].chunks_exact(4).zip(y[..done].chunks_exact_mut(4)) {
            // SAFETY: both chunks hold four values; no alignment needed.
            unsafe {
                let yv = v128_load(y.as_ptr().cast());
                let xv = v128_load(x.as_ptr().cast());
                v128_store(y.as_mut_ptr().cast(), f32x4_add(yv, f32x4_mul(av, xv)));
            }
        }
        axpy(a, &x[done..n], &mut y[done..n]);
    }
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    axpy(a, x, y);
}

/// In-place softmax: the maximum as four running [`pmax`] lanes, then
/// `exp(v − max)` summed in four lanes, then each value times `1 / sum`.
pub fn softmax(x: &mut [f32]) {
    let n = x.len();
    let body = n / 4 * 4;
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    let mut m = {
        let mut mv = f32x4_splat(f32::NEG_INFINITY);
        for c in x[..body].chunks_exact(4) {
            // SAFETY: the chunk holds four values.
            mv = f32x4_pmax(mv, unsafe { v128_load(c.as_ptr().cast()) });
        }
        lanes(mv)
    };
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    let mut m = {
        let mut m = [f32::NEG_INFINITY; 4];
        for c in x[..body].chunks_exact(4) {
            for k in 0..4 {
                m[k] = pmax(m[k], c[k]);
            }
        }
        m
    };
    for (i, &v) in x[body..].iter().enumerate() {
        m[i % 4] = pmax(m[i % 4], v);
    }
    let max = pmax(pmax(m[0], m[1]), pmax(m[2], m[3]));

    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    let mut s = {
        let (maxv, mut sv) = (f32x4_splat(max), f32x4_splat(0.0));
        for c in x[..body].chunks_exact_mut(4) {
            // SAFETY: the chunk holds four values.
            unsafe {
                let e = exp4(f32x4_sub(v128_load(c.as_ptr().cast()), maxv));
                v128_store(c.as_mut_ptr().cast(), e);
                sv = f32x4_add(sv, e);
            }
        }
        lanes(sv)
    };
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    let mut s = {
        let mut s = [0.0f32; 4];
        for c in x[..body].chunks_exact_mut(4) {
            for k in 0..4 {
                c[k] = exp(c[k] - max);
                s[k] += c[k];
            }
        }
        s
    };
    for (i, v) in x[body..].iter_mut().enumerate() {
        *v = exp(*v - max);
        s[i % 4] += *v;
    }
    let inv = 1.0 / ((s[0] + s[1]) + (s[2] + s[3]));
    for v in x.iter_mut() {
        *v *= inv;
    }
}

/// `gate ← silu(gate) · up`: `(g · (1 / (1 + exp(−g)))) · u`, element by
/// element.
pub fn silu_mul(gate: &mut [f32], up: &[f32]) {
    let n = gate.len().min(up.len());
    let (gate, up) = (&mut gate[..n], &up[..n]);
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    let done = {
        let one = f32x4_splat(1.0);
        for (g, u) in gate.chunks_exact_mut(4).zip(up.chunks_exact(4)) {
            // SAFETY: both chunks hold four values.
            unsafe {
                let gv = v128_load(g.as_ptr().cast());
                let uv = v128_load(u.as_ptr().cast());
                let sig = f32x4_div(one, f32x4_add(one, exp4(f32x4_neg(gv))));
                v128_store(g.as_mut_ptr().cast(), f32x4_mul(f32x4_mul(gv, sig), uv));
            }
        }
        n / 4 * 4
    };
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    let done = 0;
    for (g, &u) in gate[done..].iter_mut().zip(&up[done..]) {
        let sig = 1.0 / (1.0 + exp(-*g));
        *g = *g * sig * u;
    }
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
#[inline(always)]
fn lanes(v: v128) -> [f32; 4] {
    [
        f32x4_extract_lane::<0>(v),
        f32x4_extract_lane::<1>(v),
        f32x4_extract_lane::<2>(v),
        f32x4_extract_lane::<3>(v),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_is_within_two_ulps_of_libm_over_its_range() {
        let mut worst = 0u32;
        let mut x = -87.0f32;
        while x <= 88.0 {
            let (a, b) = (exp(x), libm::expf(x));
            let ulps = (a.to_bits() as i64 - b.to_bits() as i64).unsigned_abs() as u32;
            worst = worst.max(ulps);
            x += 0.0137;
        }
        assert!(worst <= 2, "{worst} ulps");
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(exp(-1000.0), 0.0);
        assert_eq!(exp(f32::NEG_INFINITY), 0.0);
        assert!(exp(f32::NAN).is_nan());
        assert!(exp(1000.0).is_finite());
    }

    #[test]
    fn softmax_and_silu_follow_their_definitions() {
        let mut x: Vec<f32> = (0..11).map(|i| (i as f32 * 0.7).sin() * 3.0).collect();
        let orig = x.clone();
        softmax(&mut x);
        let max = orig.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let total: f32 = orig.iter().map(|v| libm::expf(v - max)).sum();
        for (p, v) in x.iter().zip(&orig) {
            assert!((p - libm::expf(v - max) / total).abs() < 1e-6);
        }
        assert!((x.iter().sum::<f32>() - 1.0).abs() < 1e-6);

        let mut g = orig.clone();
        let up: Vec<f32> = (0..11).map(|i| i as f32 - 5.0).collect();
        silu_mul(&mut g, &up);
        for ((g, v), u) in g.iter().zip(&orig).zip(&up) {
            let want = v / (1.0 + libm::expf(-v)) * u;
            assert!((g - want).abs() <= 1e-5 * want.abs().max(1.0), "{g} {want}");
        }
    }

    #[test]
    fn dot_and_axpy_keep_their_order() {
        let a: Vec<f32> = (0..19).map(|i| 1.0 / (i as f32 + 1.0)).collect();
        let b: Vec<f32> = (0..19).map(|i| (i as f32).sqrt()).collect();
        let mut s = [0.0f32; 8];
        for i in 0..16 {
            s[i % 8] += a[i] * b[i];
        }
        let tail = a[16] * b[16] + a[17] * b[17] + a[18] * b[18];
        let want = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7])) + tail;
        assert_eq!(dot_f32(&a, &b).to_bits(), want.to_bits());
        assert_eq!(dot_f32_head(&a, &b).to_bits(), want.to_bits());
        for f in [axpy, axpy_head] {
            let mut y = b.clone();
            f(0.5, &a, &mut y);
            for ((y, a), b) in y.iter().zip(&a).zip(&b) {
                assert_eq!(y.to_bits(), (b + 0.5 * a).to_bits());
            }
        }
    }
}
