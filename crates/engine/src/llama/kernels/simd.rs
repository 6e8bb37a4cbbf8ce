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

/// Eight weights widened to i16 as they load, times eight activations:
/// lane k sums positions 2k, 2k+1 (block k of the group).
///
/// # Safety
/// 8 readable weights at `wp`, 8 activations at `xp`.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
#[inline(always)]
unsafe fn dot8(wp: *const i8, xp: *const i16) -> core::arch::wasm32::v128 {
    use core::arch::wasm32::*;
    // SAFETY: as the caller guarantees; no alignment needed.
    unsafe { i32x4_dot_i16x8(i16x8_load_extend_i8x8(wp), v128_load(xp.cast())) }
}

/// The sum of 16 lane-wise vectors `d(0) .. d(15)` as a balanced tree (the
/// order does not matter: integer sums are exact).
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
macro_rules! tree16 {
    ($d:expr) => {{
        use core::arch::wasm32::i32x4_add as add;
        let d = $d;
        add(
            add(
                add(add(d(0), d(1)), add(d(2), d(3))),
                add(add(d(4), d(5)), add(d(6), d(7))),
            ),
            add(
                add(add(d(8), d(9)), add(d(10), d(11))),
                add(add(d(12), d(13)), add(d(14), d(15))),
            ),
        )
    }};
}

/// `[f(0), f(1), .., f(15)]`: sixteen calls with literal arguments, so
/// that arrays indexed by them stay in locals.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
macro_rules! sixteen {
    ($f:expr) => {{
        let f = $f;
        [
            f(0),
            f(1),
            f(2),
            f(3),
            f(4),
            f(5),
            f(6),
            f(7),
            f(8),
            f(9),
            f(10),
            f(11),
            f(12),
            f(13),
            f(14),
            f(15),
        ]
    }};
}

/// `acc` plus the terms of two contiguous blocks (the tail of a row of
/// `4k + 2` blocks, such as SmolLM2's 576 and 960 values) at `wp`/`xp`,
/// scales at `dwp`/`dxp`: lane j gets block j's `isum as f32 × (dw × dx)`,
/// as in [`finish`]'s loop (the first tail block is a multiple of four, so
/// it goes to lane 0). Lanes 2 and 3 get `x × 0 = ±0`, which leaves them as
/// they were: a lane is never -0 (it starts at +0, and +0 + -0 = +0).
///
/// # Safety
/// 64 quants and activations at `wp` and `xp`, 2 scales at `dwp`, `dxp`.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
#[inline(always)]
unsafe fn tail2(
    acc: core::arch::wasm32::v128,
    wp: *const i8,
    xp: *const i16,
    dwp: *const f32,
    dxp: *const f32,
) -> core::arch::wasm32::v128 {
    use core::arch::wasm32::*;
    // SAFETY: as the caller guarantees.
    unsafe {
        let d = |i: usize| dot8(wp.add(8 * i), xp.add(8 * i));
        let s0 = i32x4_add(i32x4_add(d(0), d(1)), i32x4_add(d(2), d(3)));
        let s1 = i32x4_add(i32x4_add(d(4), d(5)), i32x4_add(d(6), d(7)));
        // [dw · dx, dw' · dx', 0, 0]
        let scale = f32x4_mul(v128_load64_zero(dwp.cast()), v128_load64_zero(dxp.cast()));
        tail2_sums(acc, s0, s1, scale)
    }
}

/// The end of [`tail2`]: `s0`, `s1` the two blocks' lane sums, `scale`
/// `[dw · dx, dw' · dx', 0, 0]`.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
#[inline(always)]
fn tail2_sums(
    acc: core::arch::wasm32::v128,
    s0: core::arch::wasm32::v128,
    s1: core::arch::wasm32::v128,
    scale: core::arch::wasm32::v128,
) -> core::arch::wasm32::v128 {
    use core::arch::wasm32::*;
    // [s0.0 + s0.1, s0.2 + s0.3, s1.0 + s1.1, s1.2 + s1.3]
    let u = i32x4_add(
        i32x4_shuffle::<0, 2, 4, 6>(s0, s1),
        i32x4_shuffle::<1, 3, 5, 7>(s0, s1),
    );
    // [Σ s0, Σ s1, Σ s0, Σ s1]
    let v = i32x4_add(
        i32x4_shuffle::<0, 2, 0, 2>(u, u),
        i32x4_shuffle::<1, 3, 1, 3>(u, u),
    );
    f32x4_add(acc, f32x4_mul(f32x4_convert_i32x4(v), scale))
}

/// `(l0 + l1) + (l2 + l3)`: the canonical end of a dot product.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
#[inline(always)]
fn reduce(acc: core::arch::wasm32::v128) -> f32 {
    use core::arch::wasm32::*;
    (f32x4_extract_lane::<0>(acc) + f32x4_extract_lane::<1>(acc))
        + (f32x4_extract_lane::<2>(acc) + f32x4_extract_lane::<3>(acc))
}

/// The end of one row's canonical dot product: the four lanes of `acc`
/// (every interleaved group summed), plus the contiguous blocks from
/// `first` on, each into lane `b % 4`, then `(l0 + l1) + (l2 + l3)`.
///
/// # Safety
/// `w`, `dw`, `x`, `dx` as for [`dot_q8`].
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
#[inline(always)]
unsafe fn finish(
    acc: core::arch::wasm32::v128,
    first: usize,
    w: &[i8],
    dw: &[f32],
    x: &[i16],
    dx: &[f32],
) -> f32 {
    use core::arch::wasm32::*;
    let mut lanes = [
        f32x4_extract_lane::<0>(acc),
        f32x4_extract_lane::<1>(acc),
        f32x4_extract_lane::<2>(acc),
        f32x4_extract_lane::<3>(acc),
    ];
    for b in first..dw.len() {
        let r = b * BLOCK..(b + 1) * BLOCK;
        // SAFETY: block b lies within the slices (module docs).
        let isum = unsafe {
            let (wp, xp) = (w.as_ptr().add(r.start), x.as_ptr().add(r.start));
            let d = |i: usize| dot8(wp.add(8 * i), xp.add(8 * i));
            i32x4_add(i32x4_add(d(0), d(1)), i32x4_add(d(2), d(3)))
        };
        let isum = (i32x4_extract_lane::<0>(isum) + i32x4_extract_lane::<1>(isum))
            + (i32x4_extract_lane::<2>(isum) + i32x4_extract_lane::<3>(isum));
        debug_assert_eq!(isum, block_isum(&w[r.clone()], &x[r]));
        lanes[b % 4] += isum as f32 * (dw[b] * dx[b]);
    }
    (lanes[0] + lanes[1]) + (lanes[2] + lanes[3])
}

/// [`finish`] for every pair of a tile of `R` weight rows by four
/// activation rows (`w`, `dw`, `x`, `dx` as its kernel takes them).
///
/// # Safety
/// As for the tile's kernel.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
#[inline(always)]
unsafe fn finish_tile<const R: usize>(
    acc: [[core::arch::wasm32::v128; 4]; R],
    first: usize,
    w: &[i8],
    dw: &[f32],
    x: &[i16],
    dx: &[f32],
    cols: usize,
) -> [[f32; 4]; R] {
    let blocks = cols / BLOCK;
    core::array::from_fn(|r| {
        core::array::from_fn(|t| {
            // SAFETY: row r and activation row t lie within the slices.
            unsafe {
                finish(
                    acc[r][t],
                    first,
                    &w[r * cols..(r + 1) * cols],
                    &dw[r * blocks..(r + 1) * blocks],
                    &x[t * cols..(t + 1) * cols],
                    &dx[t * blocks..(t + 1) * blocks],
                )
            }
        })
    })
}

/// # Safety
/// See the module docs.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
#[inline(always)]
pub unsafe fn dot_q8(w: &[i8], dw: &[f32], x: &[i16], dx: &[f32]) -> f32 {
    use core::arch::wasm32::*;

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
            let isum = tree16!(|i: usize| dot8(wp.add(8 * i), xp.add(8 * i)));
            let scale = f32x4_mul(v128_load(dwp.cast()), v128_load(dxp.cast()));
            acc = f32x4_add(acc, f32x4_mul(f32x4_convert_i32x4(isum), scale));
            wp = wp.add(GROUP);
            xp = xp.add(GROUP);
            dwp = dwp.add(GROUP_BLOCKS);
            dxp = dxp.add(GROUP_BLOCKS);
        }
        if blocks == groups * GROUP_BLOCKS + 2 {
            reduce(tail2(acc, wp, xp, dwp, dxp))
        } else {
            finish(acc, groups * GROUP_BLOCKS, w, dw, x, dx)
        }
    }
}

/// Four rows times one activation row ([`super::dot_q8_4x1`]): the
/// activation vectors of a group are loaded once for the four rows, and the
/// per-row work around the loop is shared. Each result follows the
/// canonical order exactly as [`dot_q8`] does.
///
/// # Safety
/// `w`: 4 rows of `cols` quants, `dw` 4 rows of `cols / 32` scales, `x`
/// `cols` activations, `dx` their scales; `cols` a multiple of 32, blocks
/// laid out as the module docs say.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
#[inline(always)]
pub unsafe fn dot_q8_4x1(w: &[i8], dw: &[f32], x: &[i16], dx: &[f32], cols: usize) -> [f32; 4] {
    use core::arch::wasm32::*;

    let blocks = cols / BLOCK;
    let groups = blocks / GROUP_BLOCKS;
    let mut acc = [f32x4_splat(0.0); 4];
    // SAFETY (whole body): row r's group g reads values r × cols + g × 128
    // .. + 128 and scales r × blocks + 4g .. + 4, the activations' group g
    // values g × 128 .. + 128 and scales 4g .. + 4: all within the slices.
    unsafe {
        let mut wp: [*const i8; 4] = core::array::from_fn(|r| w.as_ptr().add(r * cols));
        let mut dwp: [*const f32; 4] = core::array::from_fn(|r| dw.as_ptr().add(r * blocks));
        let (mut xp, mut dxp) = (x.as_ptr(), dx.as_ptr());
        for _ in 0..groups {
            let xv = sixteen!(|i: usize| v128_load(xp.add(8 * i).cast()));
            let dxv = v128_load(dxp.cast());
            macro_rules! row {
                ($r:literal) => {{
                    let p = wp[$r];
                    let isum = tree16!(|i: usize| {
                        i32x4_dot_i16x8(i16x8_load_extend_i8x8(p.add(8 * i)), xv[i])
                    });
                    let scale = f32x4_mul(v128_load(dwp[$r].cast()), dxv);
                    f32x4_add(acc[$r], f32x4_mul(f32x4_convert_i32x4(isum), scale))
                }};
            }
            acc = [row!(0), row!(1), row!(2), row!(3)];
            wp = wp.map(|p| p.add(GROUP));
            dwp = dwp.map(|p| p.add(GROUP_BLOCKS));
            xp = xp.add(GROUP);
            dxp = dxp.add(GROUP_BLOCKS);
        }
        if blocks == groups * GROUP_BLOCKS + 2 {
            let t = |r: usize| reduce(tail2(acc[r], wp[r], xp, dwp[r], dxp));
            return [t(0), t(1), t(2), t(3)];
        }
        core::array::from_fn(|r| {
            finish(
                acc[r],
                groups * GROUP_BLOCKS,
                &w[r * cols..(r + 1) * cols],
                &dw[r * blocks..(r + 1) * blocks],
                x,
                dx,
            )
        })
    }
}

/// Four rows times four activation rows ([`super::dot_q8_4x4`]): each
/// group's 64 weight vectors and 64 activation vectors are loaded once and
/// serve all 16 products, which on the IC (one instruction each) is what
/// a batched product saves. Each of the 16 results follows the canonical
/// order exactly as [`dot_q8`] does.
///
/// # Safety
/// `w`: 4 rows of `cols` quants, `dw` 4 rows of `cols / 32` scales, `x` 4
/// rows of `cols` activations, `dx` 4 rows of scales; `cols` a multiple of
/// 32, blocks laid out as the module docs say.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
#[inline(always)]
pub unsafe fn dot_q8_4x4(
    w: &[i8],
    dw: &[f32],
    x: &[i16],
    dx: &[f32],
    cols: usize,
) -> [[f32; 4]; 4] {
    use core::arch::wasm32::*;

    let blocks = cols / BLOCK;
    let groups = blocks / GROUP_BLOCKS;
    let mut acc = [[f32x4_splat(0.0); 4]; 4];
    // SAFETY (whole body): row r's group g reads values r × cols + g × 128
    // .. + 128 and scales r × blocks + 4g .. + 4, all within the slices.
    unsafe {
        let mut wp: [*const i8; 4] = core::array::from_fn(|r| w.as_ptr().add(r * cols));
        let mut xp: [*const i16; 4] = core::array::from_fn(|t| x.as_ptr().add(t * cols));
        let mut dwp: [*const f32; 4] = core::array::from_fn(|r| dw.as_ptr().add(r * blocks));
        let mut dxp: [*const f32; 4] = core::array::from_fn(|t| dx.as_ptr().add(t * blocks));
        // Every index below is a literal (macros, and closures called with
        // constants), so that the compiler keeps the 128 vectors of a group
        // in locals: with loops it kept them in memory, which costs more
        // than it saves.
        for _ in 0..groups {
            let load_w = |p: *const i8| sixteen!(|i: usize| i16x8_load_extend_i8x8(p.add(8 * i)));
            let load_x = |p: *const i16| sixteen!(|i: usize| v128_load(p.add(8 * i).cast()));
            let wv = [load_w(wp[0]), load_w(wp[1]), load_w(wp[2]), load_w(wp[3])];
            let xv = [load_x(xp[0]), load_x(xp[1]), load_x(xp[2]), load_x(xp[3])];
            let dwv = [0, 1, 2, 3].map(|r| v128_load(dwp[r].cast()));
            let dxv = [0, 1, 2, 3].map(|t| v128_load(dxp[t].cast()));
            macro_rules! pair {
                ($r:literal, $t:literal) => {{
                    let (w, x) = (&wv[$r], &xv[$t]);
                    let isum = tree16!(|i: usize| i32x4_dot_i16x8(w[i], x[i]));
                    let scale = f32x4_mul(dwv[$r], dxv[$t]);
                    f32x4_add(acc[$r][$t], f32x4_mul(f32x4_convert_i32x4(isum), scale))
                }};
            }
            acc = [
                [pair!(0, 0), pair!(0, 1), pair!(0, 2), pair!(0, 3)],
                [pair!(1, 0), pair!(1, 1), pair!(1, 2), pair!(1, 3)],
                [pair!(2, 0), pair!(2, 1), pair!(2, 2), pair!(2, 3)],
                [pair!(3, 0), pair!(3, 1), pair!(3, 2), pair!(3, 3)],
            ];
            wp = wp.map(|p| p.add(GROUP));
            dwp = dwp.map(|p| p.add(GROUP_BLOCKS));
            xp = xp.map(|p| p.add(GROUP));
            dxp = dxp.map(|p| p.add(GROUP_BLOCKS));
        }
        if blocks == groups * GROUP_BLOCKS + 2 {
            let t = |r: usize, t: usize| reduce(tail2(acc[r][t], wp[r], xp[t], dwp[r], dxp[t]));
            return [
                [t(0, 0), t(0, 1), t(0, 2), t(0, 3)],
                [t(1, 0), t(1, 1), t(1, 2), t(1, 3)],
                [t(2, 0), t(2, 1), t(2, 2), t(2, 3)],
                [t(3, 0), t(3, 1), t(3, 2), t(3, 3)],
            ];
        }
        finish_tile(acc, groups * GROUP_BLOCKS, w, dw, x, dx, cols)
    }
}

/// Eight rows times four activation rows ([`super::dot_q8_8x4`]): each
/// group's 64 activation vectors are loaded once and stay in locals while
/// the eight rows stream past them, 16 weight vectors at a time, each
/// serving four products. Per multiply-add that is a third fewer loads
/// than [`dot_q8_4x4`] (the IC counts each load, its address and the local
/// it fills). The two tail blocks of `4k + 2`-block rows are shared the
/// same way. Each of the 32 results follows the canonical order exactly as
/// [`dot_q8`] does.
///
/// # Safety
/// `w`: 8 rows of `cols` quants, `dw` 8 rows of `cols / 32` scales, `x` 4
/// rows of `cols` activations, `dx` 4 rows of scales; `cols` a multiple of
/// 32, blocks laid out as the module docs say.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
#[inline(always)]
pub unsafe fn dot_q8_8x4(
    w: &[i8],
    dw: &[f32],
    x: &[i16],
    dx: &[f32],
    cols: usize,
) -> [[f32; 4]; 8] {
    use core::arch::wasm32::*;

    let blocks = cols / BLOCK;
    let groups = blocks / GROUP_BLOCKS;
    // One array per row: LLVM splits an array into locals only up to 32
    // pieces (`sroa-max-alloca-slices`), and a [[v128; 4]; 8] left whole
    // would be loaded and stored for every product.
    let z = [f32x4_splat(0.0); 4];
    let (mut a0, mut a1, mut a2, mut a3, mut a4, mut a5, mut a6, mut a7) = (z, z, z, z, z, z, z, z);
    // SAFETY (whole body): row r's group g reads values r × cols + g × 128
    // .. + 128 and scales r × blocks + 4g .. + 4, token t's likewise; the
    // tail reads the two blocks after the last group: all within the
    // slices.
    unsafe {
        let mut wp: [*const i8; 8] = core::array::from_fn(|r| w.as_ptr().add(r * cols));
        let mut dwp: [*const f32; 8] = core::array::from_fn(|r| dw.as_ptr().add(r * blocks));
        let mut xp: [*const i16; 4] = core::array::from_fn(|t| x.as_ptr().add(t * cols));
        let mut dxp: [*const f32; 4] = core::array::from_fn(|t| dx.as_ptr().add(t * blocks));
        // Literal indices throughout (macros), so that the vectors stay in
        // locals (see `dot_q8_4x4`).
        for _ in 0..groups {
            let load_x = |p: *const i16| sixteen!(|i: usize| v128_load(p.add(8 * i).cast()));
            let xv = [load_x(xp[0]), load_x(xp[1]), load_x(xp[2]), load_x(xp[3])];
            let dxv = [0, 1, 2, 3].map(|t| v128_load(dxp[t].cast()));
            macro_rules! row {
                ($r:literal, $a:ident) => {{
                    let p = wp[$r];
                    let wv = sixteen!(|i: usize| i16x8_load_extend_i8x8(p.add(8 * i)));
                    let dwv = v128_load(dwp[$r].cast());
                    macro_rules! pair {
                        ($t:literal) => {{
                            let xt = &xv[$t];
                            let isum = tree16!(|i: usize| i32x4_dot_i16x8(wv[i], xt[i]));
                            let scale = f32x4_mul(dwv, dxv[$t]);
                            f32x4_add($a[$t], f32x4_mul(f32x4_convert_i32x4(isum), scale))
                        }};
                    }
                    $a = [pair!(0), pair!(1), pair!(2), pair!(3)];
                }};
            }
            row!(0, a0);
            row!(1, a1);
            row!(2, a2);
            row!(3, a3);
            row!(4, a4);
            row!(5, a5);
            row!(6, a6);
            row!(7, a7);
            wp = wp.map(|p| p.add(GROUP));
            dwp = dwp.map(|p| p.add(GROUP_BLOCKS));
            xp = xp.map(|p| p.add(GROUP));
            dxp = dxp.map(|p| p.add(GROUP_BLOCKS));
        }
        let acc = [a0, a1, a2, a3, a4, a5, a6, a7];
        if blocks == groups * GROUP_BLOCKS + 2 {
            // As `tail2`, with each vector loaded once for the tile.
            let eight_x = |p: *const i16| -> [v128; 8] {
                core::array::from_fn(|i| v128_load(p.add(8 * i).cast()))
            };
            let xv = [
                eight_x(xp[0]),
                eight_x(xp[1]),
                eight_x(xp[2]),
                eight_x(xp[3]),
            ];
            let dxv = [0, 1, 2, 3].map(|t| v128_load64_zero(dxp[t].cast()));
            let mut out = [[0.0f32; 4]; 8];
            macro_rules! row {
                ($r:literal) => {{
                    let p = wp[$r];
                    let wv: [v128; 8] =
                        core::array::from_fn(|i| i16x8_load_extend_i8x8(p.add(8 * i)));
                    let dwv = v128_load64_zero(dwp[$r].cast());
                    macro_rules! pair {
                        ($t:literal) => {{
                            let xt = &xv[$t];
                            let d = |i: usize| i32x4_dot_i16x8(wv[i], xt[i]);
                            let s0 = i32x4_add(i32x4_add(d(0), d(1)), i32x4_add(d(2), d(3)));
                            let s1 = i32x4_add(i32x4_add(d(4), d(5)), i32x4_add(d(6), d(7)));
                            reduce(tail2_sums(acc[$r][$t], s0, s1, f32x4_mul(dwv, dxv[$t])))
                        }};
                    }
                    out[$r] = [pair!(0), pair!(1), pair!(2), pair!(3)];
                }};
            }
            row!(0);
            row!(1);
            row!(2);
            row!(3);
            row!(4);
            row!(5);
            row!(6);
            row!(7);
            return out;
        }
        finish_tile(acc, groups * GROUP_BLOCKS, w, dw, x, dx, cols)
    }
}

/// One interleaved group of 128 activations into `i16` quants and four
/// block scales, as [`super::quantize_group`] computes them (the caller
/// zeroes blocks without a scale): each block's largest magnitude as the
/// largest `|v|` bit pattern, then `round(v × 127 / amax)` by the `1.5 ×
/// 2²³` addition, eight values per store.
///
/// # Safety
/// `v` and `q` hold at least 128 values, `d` at least 4.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
#[inline(always)]
pub unsafe fn quantize_group_i16(v: &[f32], q: &mut [i16], d: &mut [f32]) {
    use super::{block_scale, ROUND_MAGIC};
    use core::arch::wasm32::*;
    debug_assert!(v.len() >= GROUP && q.len() >= GROUP && d.len() >= GROUP_BLOCKS);
    // Within each 8 values, lanes of the first four belong to blocks
    // 0, 0, 1, 1 and of the next four to 2, 2, 3, 3.
    let (vp, qp) = (v.as_ptr(), q.as_mut_ptr());
    let abs = i32x4_splat(0x7fff_ffff);
    // SAFETY (whole body): reads 128 values at `vp`, writes 128 at `qp`.
    unsafe {
        let (mut lo, mut hi) = (i32x4_splat(0), i32x4_splat(0));
        for c in 0..GROUP / 8 {
            lo = u32x4_max(lo, v128_and(v128_load(vp.add(8 * c).cast()), abs));
            hi = u32x4_max(hi, v128_and(v128_load(vp.add(8 * c + 4).cast()), abs));
        }
        let amax = [
            u32x4_extract_lane::<0>(lo).max(u32x4_extract_lane::<1>(lo)),
            u32x4_extract_lane::<2>(lo).max(u32x4_extract_lane::<3>(lo)),
            u32x4_extract_lane::<0>(hi).max(u32x4_extract_lane::<1>(hi)),
            u32x4_extract_lane::<2>(hi).max(u32x4_extract_lane::<3>(hi)),
        ];
        let mut inv = [0.0f32; GROUP_BLOCKS];
        for k in 0..GROUP_BLOCKS {
            (d[k], inv[k]) = block_scale(amax[k]);
        }
        let inv_lo = f32x4(inv[0], inv[0], inv[1], inv[1]);
        let inv_hi = f32x4(inv[2], inv[2], inv[3], inv[3]);
        let magic = f32x4_splat(ROUND_MAGIC);
        let round = |x: v128, inv: v128| i32x4_sub(f32x4_add(f32x4_mul(x, inv), magic), magic);
        for c in 0..GROUP / 8 {
            let a = round(v128_load(vp.add(8 * c).cast()), inv_lo);
            let b = round(v128_load(vp.add(8 * c + 4).cast()), inv_hi);
            v128_store(qp.add(8 * c).cast(), i16x8_narrow_i32x4(a, b));
        }
    }
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
