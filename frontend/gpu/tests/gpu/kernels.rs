//! Each op against a CPU reference written here with plain loops, on
//! several shapes, ragged ones included (sizes that are not multiples of
//! the 64-thread workgroup, of the linear kernel's 4-row blocks, contexts
//! longer than one workgroup's stride).

use gpu::context::Gpu;
use gpu::ops::{
    Add, Attention, AttentionShape, Embedding, KvShape, KvWrite, Linear, LmHead, RmsNorm, Rope,
    RopeTables, SwiGlu,
};
use gpu::{block_on, GpuError};

use crate::{all_close, gpu};

const ATOL: f32 = 1e-5;
const RTOL: f32 = 1e-4;

/// Deterministic values in [-1, 1).
fn data(seed: u64, len: usize) -> Vec<f32> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

fn read(gpu: &Gpu, buffer: &wgpu::Buffer, len: usize) -> Vec<f32> {
    block_on(gpu.read_f32("test", buffer, 0, len)).unwrap()
}

fn run(gpu: &Gpu, record: impl FnOnce(&mut wgpu::CommandEncoder)) {
    let mut e = gpu.encoder("test");
    record(&mut e);
    gpu.submit(e);
}

#[test]
fn embedding_gathers_rows() {
    let g = gpu();
    let op = Embedding::new(g);
    for (rows, hidden, vocab) in [(1, 64, 10), (5, 37, 13), (3, 130, 7), (70, 3, 100)] {
        let table = data(1, vocab * hidden);
        let ids: Vec<u32> = (0..rows).map(|r| ((r * 7 + 3) % vocab) as u32).collect();
        let mut expected = Vec::new();
        for &id in &ids {
            expected.extend_from_slice(&table[id as usize * hidden..][..hidden]);
        }
        let (ib, tb, ob) = (
            g.upload("ids", &ids).unwrap(),
            g.upload("table", &table).unwrap(),
            g.storage("out", rows * hidden).unwrap(),
        );
        run(g, |e| {
            op.encode(g, e, rows, hidden, vocab, &ib, &tb, &ob).unwrap()
        });
        assert_eq!(read(g, &ob, rows * hidden), expected, "{rows}x{hidden}");
    }
}

fn rms_norm_ref(x: &[f32], w: &[f32], dim: usize, eps: f32) -> Vec<f32> {
    x.chunks(dim)
        .flat_map(|row| {
            let mean = row.iter().map(|v| v * v).sum::<f32>() / dim as f32;
            let inv = 1.0 / (mean + eps).sqrt();
            row.iter().zip(w).map(move |(v, w)| v * inv * w)
        })
        .collect()
}

#[test]
fn rms_norm_matches_reference() {
    let g = gpu();
    let op = RmsNorm::new(g);
    for (rows, dim) in [(1, 64), (3, 37), (2, 200), (5, 1), (33, 576)] {
        let x = data(2, rows * dim);
        let w = data(3, dim);
        let eps = 1e-5;
        let (xb, wb, ob) = (
            g.upload("x", &x).unwrap(),
            g.upload("w", &w).unwrap(),
            g.storage("out", rows * dim).unwrap(),
        );
        run(g, |e| {
            op.encode(g, e, rows, dim, eps, &xb, &wb, &ob).unwrap()
        });
        all_close(
            &format!("rms_norm {rows}x{dim}"),
            &read(g, &ob, rows * dim),
            &rms_norm_ref(&x, &w, dim, eps),
            ATOL,
            RTOL,
        );
    }
}

fn matmul_ref(x: &[f32], w: &[f32], rows: usize, k: usize, n: usize) -> Vec<f32> {
    let mut y = vec![0.0f32; rows * n];
    for r in 0..rows {
        for j in 0..n {
            y[r * n + j] = (0..k).map(|i| x[r * k + i] * w[i * n + j]).sum();
        }
    }
    y
}

#[test]
fn linear_matches_reference() {
    let g = gpu();
    let op = Linear::new(g);
    // Output widths are multiples of 4 (the kernel reads vec4s; see
    // below), their quarters not multiples of the workgroup.
    for (rows, k, n) in [
        (1, 64, 64),
        (3, 37, 28),
        (5, 130, 68),
        (9, 17, 260),
        (4, 1, 4),
        (2, 576, 1536),
    ] {
        let x = data(4, rows * k);
        let w = data(5, k * n);
        let (xb, wb, yb) = (
            g.upload("x", &x).unwrap(),
            g.upload("w", &w).unwrap(),
            g.storage("y", rows * n).unwrap(),
        );
        run(g, |e| op.encode(g, e, rows, k, n, &xb, &wb, &yb).unwrap());
        all_close(
            &format!("linear {rows}x{k}x{n}"),
            &read(g, &yb, rows * n),
            &matmul_ref(&x, &w, rows, k, n),
            ATOL,
            RTOL,
        );
    }
}

#[test]
fn linear_refuses_a_short_buffer_and_a_ragged_width() {
    let g = gpu();
    let op = Linear::new(g);
    let xb = g.storage("x", 2 * 5).unwrap();
    let wb = g.storage("w", 5 * 4).unwrap();
    let yb = g.storage("y", 7).unwrap();
    let mut e = g.encoder("test");
    let err = op.encode(g, &mut e, 2, 5, 4, &xb, &wb, &yb).unwrap_err();
    assert!(
        matches!(
            err,
            GpuError::BufferTooSmall {
                buffer: "y",
                have: 7,
                need: 8,
                ..
            }
        ),
        "{err}"
    );
    let err = op.encode(g, &mut e, 1, 5, 3, &xb, &wb, &yb).unwrap_err();
    assert!(matches!(err, GpuError::Shape { op: "linear", .. }), "{err}");
}

#[test]
fn lm_head_matches_reference() {
    let g = gpu();
    let op = LmHead::new(g);
    for (total_rows, first, rows, hidden, vocab) in [
        (1, 0, 1, 64, 512),
        (5, 4, 1, 36, 101),
        (6, 1, 4, 20, 65),
        (3, 0, 3, 132, 7),
    ] {
        let x = data(6, total_rows * hidden);
        let embed = data(7, vocab * hidden);
        let mut expected = Vec::new();
        for r in first..first + rows {
            for v in 0..vocab {
                expected.push(
                    (0..hidden)
                        .map(|i| x[r * hidden + i] * embed[v * hidden + i])
                        .sum(),
                );
            }
        }
        let (xb, eb, lb) = (
            g.upload("x", &x).unwrap(),
            g.upload("embed", &embed).unwrap(),
            g.storage("logits", rows * vocab).unwrap(),
        );
        run(g, |e| {
            op.encode(g, e, first, rows, hidden, vocab, &xb, &eb, &lb)
                .unwrap()
        });
        all_close(
            &format!("lm_head rows {first}+{rows} {hidden}x{vocab}"),
            &read(g, &lb, rows * vocab),
            &expected,
            ATOL,
            RTOL,
        );
    }
}

/// Hugging Face's rotate-half RoPE, angles in f64.
fn rope_ref(x: &[f32], heads: usize, hd: usize, start: usize, inv_freq: &[f32]) -> Vec<f32> {
    let half = hd / 2;
    let mut out = x.to_vec();
    for (r, row) in out.chunks_mut(heads * hd).enumerate() {
        let pos = (start + r) as f64;
        for head in row.chunks_mut(hd) {
            let orig = head.to_vec();
            for i in 0..half {
                let angle = pos * f64::from(inv_freq[i]);
                let (s, c) = (angle.sin() as f32, angle.cos() as f32);
                head[i] = orig[i] * c - orig[i + half] * s;
                head[i + half] = orig[i + half] * c + orig[i] * s;
            }
        }
    }
    out
}

fn inv_freq(hd: usize, theta: f32) -> Vec<f32> {
    (0..hd / 2)
        .map(|i| 1.0 / theta.powf(2.0 * i as f32 / hd as f32))
        .collect()
}

#[test]
fn rope_matches_reference() {
    let g = gpu();
    let op = Rope::new(g);
    for (rows, heads, hd, start, positions) in [
        (3, 4, 16, 0, 8),
        (2, 3, 6, 5, 7),
        (1, 9, 64, 100, 101),
        (40, 3, 10, 17, 57),
    ] {
        let freqs = inv_freq(hd, 10000.0);
        let tables = RopeTables::new(g, &freqs, positions).unwrap();
        let x = data(8, rows * heads * hd);
        let xb = g.upload("x", &x).unwrap();
        run(g, |e| {
            op.encode(g, e, rows, heads, hd, start, &tables, &xb)
                .unwrap()
        });
        all_close(
            &format!("rope {rows}x{heads}x{hd} from {start}"),
            &read(g, &xb, rows * heads * hd),
            &rope_ref(&x, heads, hd, start, &freqs),
            ATOL,
            RTOL,
        );
    }
}

#[test]
fn rope_refuses_positions_past_its_tables() {
    let g = gpu();
    let tables = RopeTables::new(g, &inv_freq(8, 10000.0), 4).unwrap();
    let xb = g.storage("x", 2 * 8).unwrap();
    let mut e = g.encoder("test");
    let err = Rope::new(g)
        .encode(g, &mut e, 2, 1, 8, 3, &tables, &xb)
        .unwrap_err();
    assert!(matches!(err, GpuError::Shape { op: "rope", .. }), "{err}");
}

/// Attention of rows at positions start.. over all keys/values so far,
/// `keys`/`values` as [positions, kv_heads * hd].
#[allow(clippy::too_many_arguments)]
fn attention_ref(
    q: &[f32],
    keys: &[f32],
    values: &[f32],
    rows: usize,
    start: usize,
    heads: usize,
    kv_heads: usize,
    hd: usize,
) -> Vec<f32> {
    let group = heads / kv_heads;
    let scale = 1.0 / (hd as f32).sqrt();
    let kvw = kv_heads * hd;
    let mut out = vec![0.0f32; rows * heads * hd];
    for r in 0..rows {
        let ctx = start + r + 1;
        for h in 0..heads {
            let kvh = h / group;
            let qv = &q[(r * heads + h) * hd..][..hd];
            let scores: Vec<f32> = (0..ctx)
                .map(|p| {
                    let kv = &keys[p * kvw + kvh * hd..][..hd];
                    qv.iter().zip(kv).map(|(a, b)| a * b).sum::<f32>() * scale
                })
                .collect();
            let m = scores.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
            let e: Vec<f32> = scores.iter().map(|s| (s - m).exp()).collect();
            let sum: f32 = e.iter().sum();
            for d in 0..hd {
                let acc: f32 = (0..ctx)
                    .map(|p| e[p] * values[p * kvw + kvh * hd + d])
                    .sum();
                out[(r * heads + h) * hd + d] = acc / sum;
            }
        }
    }
    out
}

/// Appends keys/values in two steps (a prompt, then more rows) through
/// `KvWrite`, checks the cache layout, and attention after each step.
#[test]
fn kv_write_and_attention_match_reference() {
    let g = gpu();
    let write = KvWrite::new(g);
    let attention = Attention::new(g);
    // (heads, kv_heads, head_dim, capacity, steps of rows)
    for (heads, kv_heads, hd, capacity, steps) in [
        (4, 2, 16, 40, vec![5, 1, 1]),
        (9, 3, 10, 150, vec![70, 3, 1]),
        (3, 3, 7, 200, vec![1, 130, 2]),
        (2, 1, 64, 66, vec![65, 1]),
    ] {
        let kv = KvShape {
            kv_heads,
            head_dim: hd,
            capacity,
        };
        let shape = AttentionShape { heads, kv };
        let kvw = kv_heads * hd;
        let total: usize = steps.iter().sum();
        let keys = data(9, total * kvw);
        let values = data(10, total * kvw);
        let k_cache = g.storage("k_cache", kv.len()).unwrap();
        let v_cache = g.storage("v_cache", kv.len()).unwrap();
        let mut start = 0;
        for (s, rows) in steps.into_iter().enumerate() {
            let q = data(11 + s as u64, rows * heads * hd);
            let kb = g
                .upload("k", &keys[start * kvw..(start + rows) * kvw])
                .unwrap();
            let vb = g
                .upload("v", &values[start * kvw..(start + rows) * kvw])
                .unwrap();
            let qb = g.upload("q", &q).unwrap();
            let scores = g
                .storage("scores", Attention::scratch_len(rows, shape))
                .unwrap();
            let out = g.storage("out", rows * heads * hd).unwrap();
            run(g, |e| {
                write.encode(g, e, rows, start, kv, &kb, &k_cache).unwrap();
                write.encode(g, e, rows, start, kv, &vb, &v_cache).unwrap();
                attention
                    .encode(
                        g, e, rows, start, shape, &qb, &k_cache, &v_cache, &scores, &out,
                    )
                    .unwrap();
            });
            let what = format!("heads {heads}/{kv_heads} hd {hd} rows {rows} from {start}");
            // The cache holds every key so far at [head, pos, d].
            let cache = read(g, &k_cache, kv.len());
            for p in 0..start + rows {
                for h in 0..kv_heads {
                    assert_eq!(
                        &cache[(h * capacity + p) * hd..][..hd],
                        &keys[p * kvw + h * hd..][..hd],
                        "{what}: k cache at head {h} position {p}"
                    );
                }
            }
            all_close(
                &format!("attention {what}"),
                &read(g, &out, rows * heads * hd),
                &attention_ref(&q, &keys, &values, rows, start, heads, kv_heads, hd),
                ATOL,
                RTOL,
            );
            start += rows;
        }
    }
}

#[test]
fn attention_refuses_ungrouped_heads_and_a_full_cache() {
    let g = gpu();
    let attention = Attention::new(g);
    let b = g.storage("any", 4096).unwrap();
    let kv = KvShape {
        kv_heads: 2,
        head_dim: 4,
        capacity: 8,
    };
    let mut e = g.encoder("test");
    let err = attention
        .encode(
            g,
            &mut e,
            1,
            0,
            AttentionShape { heads: 3, kv },
            &b,
            &b,
            &b,
            &b,
            &b,
        )
        .unwrap_err();
    assert!(
        matches!(
            err,
            GpuError::Shape {
                op: "attention",
                ..
            }
        ),
        "{err}"
    );
    let err = attention
        .encode(
            g,
            &mut e,
            2,
            7,
            AttentionShape { heads: 4, kv },
            &b,
            &b,
            &b,
            &b,
            &b,
        )
        .unwrap_err();
    assert!(
        matches!(
            err,
            GpuError::Shape {
                op: "attention",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn swiglu_and_add_match_reference() {
    let g = gpu();
    let swiglu = SwiGlu::new(g);
    let add = Add::new(g);
    for len in [1, 63, 65, 1000, 4099] {
        // Gates over a wide range, so that exp overflows for some.
        let gate: Vec<f32> = data(12, len).iter().map(|v| v * 100.0).collect();
        let up = data(13, len);
        let (gb, ub, ob) = (
            g.upload("gate", &gate).unwrap(),
            g.upload("up", &up).unwrap(),
            g.storage("out", len).unwrap(),
        );
        run(g, |e| {
            swiglu.encode(g, e, len, &gb, &ub, &ob).unwrap();
            add.encode(g, e, len, &ub, &gb).unwrap();
        });
        let expected: Vec<f32> = gate
            .iter()
            .zip(&up)
            .map(|(g, u)| g / (1.0 + (-g).exp()) * u)
            .collect();
        all_close(
            &format!("swiglu {len}"),
            &read(g, &ob, len),
            &expected,
            ATOL,
            RTOL,
        );
        let sum: Vec<f32> = gate.iter().zip(&up).map(|(g, u)| u + g).collect();
        all_close(&format!("add {len}"), &read(g, &ub, len), &sum, ATOL, RTOL);
    }
}
