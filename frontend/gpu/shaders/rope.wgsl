// Rotary position embedding, in place, the "rotate half" convention of the
// ONNX stages (and Hugging Face llama): for a head vector split into halves
// (x1, x2) at position pos,
//   out1 = x1 * cos - x2 * sin,   out2 = x2 * cos + x1 * sin,
// with cos/sin[pos, i] = cos/sin(pos * inv_freq[i]) from host-built tables.
// x = (head, i < head_dim / 2), y = row; row r is at position start_pos + r.

struct Params {
    rows: u32,
    heads: u32,
    head_dim: u32,
    start_pos: u32,
    positions: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
@group(0) @binding(2) var<storage, read> cos_table: array<f32>;
@group(0) @binding(3) var<storage, read> sin_table: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let half = p.head_dim / 2u;
    let idx = gid.x;
    let row = gid.y;
    let pos = p.start_pos + row;
    if (idx >= p.heads * half || row >= p.rows || pos >= p.positions) {
        return;
    }
    let h = idx / half;
    let i = idx % half;
    let base = row * p.heads * p.head_dim + h * p.head_dim;
    let x1 = x[base + i];
    let x2 = x[base + i + half];
    let c = cos_table[pos * half + i];
    let s = sin_table[pos * half + i];
    x[base + i] = x1 * c - x2 * s;
    x[base + i + half] = x2 * c + x1 * s;
}
