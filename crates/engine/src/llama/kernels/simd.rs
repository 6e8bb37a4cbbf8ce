//! The target-specific int8 dot product, one `dot_q8` per target, all in
//! the canonical order of [`super`]: wasm SIMD128 (`i16x8_extmul_*`,
//! `i32x4_extadd_pairwise_i16x8`) on `wasm32` with `simd128`, AVX2 on
//! `x86_64` when the CPU has it, scalar code otherwise.
//!
//! Callers pass slices of exactly `blocks × BLOCK` quants and `blocks`
//! scales (see [`super::dot_q8`]).

#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
use super::dot_q8_scalar;
#[cfg(any(
    all(target_arch = "wasm32", target_feature = "simd128"),
    target_arch = "x86_64"
))]
use super::{block_isum, BLOCK};

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub fn dot_q8(w: &[i8], dw: &[f32], x: &[i8], dx: &[f32]) -> f32 {
    use core::arch::wasm32::*;

    /// Σ w·x over one block of 32, as four i32 partial sums.
    ///
    /// # Safety
    /// `w` and `x` point to at least 32 readable bytes.
    #[inline(always)]
    unsafe fn block(w: *const i8, x: *const i8) -> v128 {
        // SAFETY: the caller guarantees 32 readable bytes behind each
        // pointer; `v128_load` has no alignment requirement.
        let (w0, w1, x0, x1) = unsafe {
            (
                v128_load(w.cast()),
                v128_load(w.add(16).cast()),
                v128_load(x.cast()),
                v128_load(x.add(16).cast()),
            )
        };
        // |q| ≤ 127: two products fit in an i16.
        let p0 = i16x8_add(
            i16x8_extmul_low_i8x16(w0, x0),
            i16x8_extmul_high_i8x16(w0, x0),
        );
        let p1 = i16x8_add(
            i16x8_extmul_low_i8x16(w1, x1),
            i16x8_extmul_high_i8x16(w1, x1),
        );
        i32x4_add(
            i32x4_extadd_pairwise_i16x8(p0),
            i32x4_extadd_pairwise_i16x8(p1),
        )
    }

    let blocks = dw.len();
    let groups = blocks / 4;
    let mut acc = f32x4_splat(0.0);
    for g in 0..groups {
        let b = g * 4;
        // SAFETY: block b+3 < blocks, and the quants hold blocks × 32 bytes,
        // the scales `blocks` values (see `super::dot_q8`).
        let (s0, s1, s2, s3, sw, sx) = unsafe {
            let (wp, xp) = (w.as_ptr().add(b * BLOCK), x.as_ptr().add(b * BLOCK));
            (
                block(wp, xp),
                block(wp.add(BLOCK), xp.add(BLOCK)),
                block(wp.add(2 * BLOCK), xp.add(2 * BLOCK)),
                block(wp.add(3 * BLOCK), xp.add(3 * BLOCK)),
                v128_load(dw.as_ptr().add(b).cast()),
                v128_load(dx.as_ptr().add(b).cast()),
            )
        };
        // Transpose-add: lane j = Σ of s_j's four lanes.
        let t01 = i32x4_add(
            i32x4_shuffle::<0, 4, 1, 5>(s0, s1),
            i32x4_shuffle::<2, 6, 3, 7>(s0, s1),
        );
        let t23 = i32x4_add(
            i32x4_shuffle::<0, 4, 1, 5>(s2, s3),
            i32x4_shuffle::<2, 6, 3, 7>(s2, s3),
        );
        let isum = i32x4_add(
            i32x4_shuffle::<0, 1, 4, 5>(t01, t23),
            i32x4_shuffle::<2, 3, 6, 7>(t01, t23),
        );
        let d = f32x4_mul(sw, sx);
        acc = f32x4_add(acc, f32x4_mul(f32x4_convert_i32x4(isum), d));
    }
    let mut lanes = [
        f32x4_extract_lane::<0>(acc),
        f32x4_extract_lane::<1>(acc),
        f32x4_extract_lane::<2>(acc),
        f32x4_extract_lane::<3>(acc),
    ];
    for b in groups * 4..blocks {
        let r = b * BLOCK..(b + 1) * BLOCK;
        lanes[b % 4] += block_isum(&w[r.clone()], &x[r]) as f32 * (dw[b] * dx[b]);
    }
    (lanes[0] + lanes[1]) + (lanes[2] + lanes[3])
}

#[cfg(target_arch = "x86_64")]
pub fn dot_q8(w: &[i8], dw: &[f32], x: &[i8], dx: &[f32]) -> f32 {
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: AVX2 is present; slice lengths as documented above.
        unsafe { dot_q8_avx2(w, dw, x, dx) }
    } else {
        dot_q8_scalar(w, dw, x, dx)
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn dot_q8_avx2(w: &[i8], dw: &[f32], x: &[i8], dx: &[f32]) -> f32 {
    use std::arch::x86_64::*;

    /// Σ w·x over one block of 32, as four i32 partial sums.
    #[inline(always)]
    unsafe fn block(w: *const i8, x: *const i8) -> __m128i {
        // SAFETY: 32 readable bytes behind each pointer (caller), AVX2 on.
        unsafe {
            let wv = _mm256_loadu_si256(w.cast());
            let xv = _mm256_loadu_si256(x.cast());
            // |w| as unsigned times x with w's sign: u8 × i8 products, two
            // of them summed into an i16 (|q| ≤ 127: no saturation).
            let aw = _mm256_sign_epi8(wv, wv);
            let sx = _mm256_sign_epi8(xv, wv);
            let p16 = _mm256_maddubs_epi16(aw, sx);
            let p32 = _mm256_madd_epi16(p16, _mm256_set1_epi16(1));
            _mm_add_epi32(
                _mm256_castsi256_si128(p32),
                _mm256_extracti128_si256::<1>(p32),
            )
        }
    }

    let blocks = dw.len();
    let groups = blocks / 4;
    // SAFETY (whole body): block b+3 < blocks for every group, the quants
    // hold blocks × 32 bytes and the scales `blocks` values.
    unsafe {
        let mut acc = _mm_setzero_ps();
        for g in 0..groups {
            let b = g * 4;
            let (wp, xp) = (w.as_ptr().add(b * BLOCK), x.as_ptr().add(b * BLOCK));
            let s0 = block(wp, xp);
            let s1 = block(wp.add(BLOCK), xp.add(BLOCK));
            let s2 = block(wp.add(2 * BLOCK), xp.add(2 * BLOCK));
            let s3 = block(wp.add(3 * BLOCK), xp.add(3 * BLOCK));
            // hadd(hadd(s0, s1), hadd(s2, s3)): lane j = Σ of s_j's lanes.
            let isum = _mm_hadd_epi32(_mm_hadd_epi32(s0, s1), _mm_hadd_epi32(s2, s3));
            let d = _mm_mul_ps(
                _mm_loadu_ps(dw.as_ptr().add(b)),
                _mm_loadu_ps(dx.as_ptr().add(b)),
            );
            acc = _mm_add_ps(acc, _mm_mul_ps(_mm_cvtepi32_ps(isum), d));
        }
        let mut lanes = [0.0f32; 4];
        _mm_storeu_ps(lanes.as_mut_ptr(), acc);
        for b in groups * 4..blocks {
            let r = b * BLOCK..(b + 1) * BLOCK;
            lanes[b % 4] += block_isum(&w[r.clone()], &x[r]) as f32 * (dw[b] * dx[b]);
        }
        (lanes[0] + lanes[1]) + (lanes[2] + lanes[3])
    }
}

#[cfg(not(any(
    all(target_arch = "wasm32", target_feature = "simd128"),
    target_arch = "x86_64"
)))]
pub fn dot_q8(w: &[i8], dw: &[f32], x: &[i8], dx: &[f32]) -> f32 {
    dot_q8_scalar(w, dw, x, dx)
}
