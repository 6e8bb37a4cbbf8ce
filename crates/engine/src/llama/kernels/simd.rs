//! The target-specific int8 dot product, one `dot_q8` per target, all in
//! the canonical order of [`super`]: wasm SIMD128 on `wasm32` with
//! `simd128`, AVX2 on `x86_64` when the CPU has it, scalar code otherwise.
//!
//! The wasm kernel reads each 8 weights with `v128.load8x8_s` (load and
//! widen to `i16` in one instruction) and multiplies them with the `i16`
//! activations by `i32x4.dot_i16x8_s`: with the interleaved blocks of
//! [`super`], lane `k` of every product belongs to block `k` of the group,
//! so a group's four integer sums come out in one vector.
//!
//! Every `dot_q8` here is `unsafe`: callers pass `w` and `x` of exactly
//! `dw.len() × BLOCK` values and `dx` of `dw.len()` scales (see
//! [`super::dot_q8`]).

#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
use super::dot_q8_scalar;
#[cfg(any(
    all(target_arch = "wasm32", target_feature = "simd128"),
    target_arch = "x86_64"
))]
use super::{block_isum, BLOCK, GROUP, GROUP_BLOCKS};

/// # Safety
/// See the module docs.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
#[inline(always)]
pub unsafe fn dot_q8(w: &[i8], dw: &[f32], x: &[i16], dx: &[f32]) -> f32 {
    use core::arch::wasm32::*;

    /// Eight weights widened to i16 as they load, times eight activations:
    /// lane k sums positions 2k, 2k+1 (block k of the group).
    ///
    /// # Safety
    /// 8 readable weights at `wp`, 8 activations at `xp`.
    #[inline(always)]
    unsafe fn dot8(wp: *const i8, xp: *const i16) -> v128 {
        // SAFETY: as the caller guarantees; no alignment needed.
        unsafe { i32x4_dot_i16x8(i16x8_load_extend_i8x8(wp), v128_load(xp.cast())) }
    }

    let blocks = dw.len();
    let groups = blocks / GROUP_BLOCKS;
    let mut acc = f32x4_splat(0.0);
    // SAFETY (whole body): group g reads values g × 128 .. (g + 1) × 128
    // and scales 4g .. 4g + 4, all within the slices (module docs);
    // `v128_load` and `i16x8_load_extend_i8x8` need no alignment.
    unsafe {
        let (mut wp, mut xp) = (w.as_ptr(), x.as_ptr());
        let (mut dwp, mut dxp) = (dw.as_ptr(), dx.as_ptr());
        for _ in 0..groups {
            // A macro, not a closure: at the canisters' `opt-level = "z"` a
            // closure may stay a call per eight products.
            macro_rules! d {
                ($i:expr) => {
                    dot8(wp.add(8 * $i), xp.add(8 * $i))
                };
            }
            let s0 = i32x4_add(i32x4_add(d!(0), d!(1)), i32x4_add(d!(2), d!(3)));
            let s1 = i32x4_add(i32x4_add(d!(4), d!(5)), i32x4_add(d!(6), d!(7)));
            let s2 = i32x4_add(i32x4_add(d!(8), d!(9)), i32x4_add(d!(10), d!(11)));
            let s3 = i32x4_add(i32x4_add(d!(12), d!(13)), i32x4_add(d!(14), d!(15)));
            let isum = i32x4_add(i32x4_add(s0, s1), i32x4_add(s2, s3));
            let scale = f32x4_mul(v128_load(dwp.cast()), v128_load(dxp.cast()));
            acc = f32x4_add(acc, f32x4_mul(f32x4_convert_i32x4(isum), scale));
            wp = wp.add(GROUP);
            xp = xp.add(GROUP);
            dwp = dwp.add(GROUP_BLOCKS);
            dxp = dxp.add(GROUP_BLOCKS);
        }
    }
    let mut lanes = [
        f32x4_extract_lane::<0>(acc),
        f32x4_extract_lane::<1>(acc),
        f32x4_extract_lane::<2>(acc),
        f32x4_extract_lane::<3>(acc),
    ];
    for b in groups * GROUP_BLOCKS..blocks {
        let r = b * BLOCK..(b + 1) * BLOCK;
        // SAFETY: block b lies within the slices (module docs).
        let isum = unsafe {
            let (wp, xp) = (w.as_ptr().add(r.start), x.as_ptr().add(r.start));
            macro_rules! d {
                ($i:expr) => {
                    dot8(wp.add(8 * $i), xp.add(8 * $i))
                };
            }
            i32x4_add(i32x4_add(d!(0), d!(1)), i32x4_add(d!(2), d!(3)))
        };
        let isum = (i32x4_extract_lane::<0>(isum) + i32x4_extract_lane::<1>(isum))
            + (i32x4_extract_lane::<2>(isum) + i32x4_extract_lane::<3>(isum));
        debug_assert_eq!(isum, block_isum(&w[r.clone()], &x[r]));
        lanes[b % 4] += isum as f32 * (dw[b] * dx[b]);
    }
    (lanes[0] + lanes[1]) + (lanes[2] + lanes[3])
}

/// # Safety
/// See the module docs.
#[cfg(target_arch = "x86_64")]
#[inline]
pub unsafe fn dot_q8(w: &[i8], dw: &[f32], x: &[i16], dx: &[f32]) -> f32 {
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: AVX2 is present; slice lengths as documented above.
        unsafe { dot_q8_avx2(w, dw, x, dx) }
    } else {
        dot_q8_scalar(w, dw, x, dx)
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn dot_q8_avx2(w: &[i8], dw: &[f32], x: &[i16], dx: &[f32]) -> f32 {
    use std::arch::x86_64::*;

    let blocks = dw.len();
    let groups = blocks / GROUP_BLOCKS;
    // SAFETY (whole body): group g reads values g × 128 .. (g + 1) × 128
    // and scales 4g .. 4g + 4, all within the slices; unaligned loads.
    unsafe {
        let mut acc = _mm_setzero_ps();
        for g in 0..groups {
            let (wp, xp) = (w.as_ptr().add(g * GROUP), x.as_ptr().add(g * GROUP));
            let mut s = _mm256_setzero_si256();
            for i in 0..GROUP / 16 {
                // 16 weights widened to i16; i32 lane j sums positions
                // 2j, 2j+1 of these 16: lanes j and j + 4 belong to block j.
                let w16 = _mm256_cvtepi8_epi16(_mm_loadu_si128(wp.add(16 * i).cast()));
                let x16 = _mm256_loadu_si256(xp.add(16 * i).cast());
                s = _mm256_add_epi32(s, _mm256_madd_epi16(w16, x16));
            }
            let isum = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256::<1>(s));
            let b = g * GROUP_BLOCKS;
            let d = _mm_mul_ps(
                _mm_loadu_ps(dw.as_ptr().add(b)),
                _mm_loadu_ps(dx.as_ptr().add(b)),
            );
            acc = _mm_add_ps(acc, _mm_mul_ps(_mm_cvtepi32_ps(isum), d));
        }
        let mut lanes = [0.0f32; 4];
        _mm_storeu_ps(lanes.as_mut_ptr(), acc);
        for b in groups * GROUP_BLOCKS..blocks {
            let r = b * BLOCK..(b + 1) * BLOCK;
            lanes[b % 4] += block_isum(&w[r.clone()], &x[r]) as f32 * (dw[b] * dx[b]);
        }
        (lanes[0] + lanes[1]) + (lanes[2] + lanes[3])
    }
}

/// # Safety
/// See the module docs.
#[cfg(not(any(
    all(target_arch = "wasm32", target_feature = "simd128"),
    target_arch = "x86_64"
)))]
#[inline]
pub unsafe fn dot_q8(w: &[i8], dw: &[f32], x: &[i16], dx: &[f32]) -> f32 {
    dot_q8_scalar(w, dw, x, dx)
}
