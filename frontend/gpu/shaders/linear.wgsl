// Linear layer without bias: y[rows, n] = x[rows, k] * w[k, n], the weight
// stored [in, out] as in the ONNX stages (`*.weight.T`); n is a multiple
// of 4 (the host checks), so the weight and output are read as vec4 rows.
// One invocation per 4 output columns and block of 4 rows (x = column
// quad, y = row block): each weight load serves up to 4 rows.

struct Params {
    rows: u32,
    k: u32,
    n: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> y: array<vec4<f32>>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let n4 = p.n / 4u;
    let col = gid.x;
    let row0 = gid.y * 4u;
    if (col >= n4 || row0 >= p.rows) {
        return;
    }
    // Rows past the end repeat the last row and are not written.
    let last = p.rows - 1u;
    let b0 = row0 * p.k;
    let b1 = min(row0 + 1u, last) * p.k;
    let b2 = min(row0 + 2u, last) * p.k;
    let b3 = min(row0 + 3u, last) * p.k;
    var a0 = vec4<f32>(0.0);
    var a1 = vec4<f32>(0.0);
    var a2 = vec4<f32>(0.0);
    var a3 = vec4<f32>(0.0);
    for (var i = 0u; i < p.k; i++) {
        let wv = w[i * n4 + col];
        a0 += x[b0 + i] * wv;
        a1 += x[b1 + i] * wv;
        a2 += x[b2 + i] * wv;
        a3 += x[b3 + i] * wv;
    }
    y[row0 * n4 + col] = a0;
    if (row0 + 1u <= last) {
        y[(row0 + 1u) * n4 + col] = a1;
    }
    if (row0 + 2u <= last) {
        y[(row0 + 2u) * n4 + col] = a2;
    }
    if (row0 + 3u <= last) {
        y[(row0 + 3u) * n4 + col] = a3;
    }
}
