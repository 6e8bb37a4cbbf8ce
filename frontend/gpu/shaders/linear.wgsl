// Linear layer without bias: y[rows, n] = x[rows, k] * w[k, n], the weight
// stored [in, out] as in the ONNX stages (`*.weight.T`).
// One invocation per output column and block of ROWS rows (x = column,
// y = row block), so each weight read serves up to ROWS rows.

struct Params {
    rows: u32,
    k: u32,
    n: u32,
    _pad: u32,
}

const ROWS: u32 = 4u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let col = gid.x;
    let row0 = gid.y * ROWS;
    if (col >= p.n || row0 >= p.rows) {
        return;
    }
    let valid = min(ROWS, p.rows - row0);
    // Rows past the end read the last valid row and are not written.
    var base: array<u32, ROWS>;
    for (var r = 0u; r < ROWS; r++) {
        base[r] = (row0 + min(r, valid - 1u)) * p.k;
    }
    var acc = vec4<f32>(0.0);
    for (var i = 0u; i < p.k; i++) {
        let wv = w[i * p.n + col];
        acc += vec4<f32>(x[base[0] + i], x[base[1] + i], x[base[2] + i], x[base[3] + i]) * wv;
    }
    for (var r = 0u; r < valid; r++) {
        y[(row0 + r) * p.n + col] = acc[r];
    }
}
