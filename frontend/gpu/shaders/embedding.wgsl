// Embedding gather: out[row, col] = table[ids[row], col].
// One invocation per output element; x = column, y = row.
// An id outside the vocabulary yields a zero row (the host rejects such ids
// before dispatching; this only keeps the read in bounds).

struct Params {
    rows: u32,
    hidden: u32,
    vocab: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> ids: array<u32>;
@group(0) @binding(2) var<storage, read> table: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let col = gid.x;
    let row = gid.y;
    if (col >= p.hidden || row >= p.rows) {
        return;
    }
    let id = ids[row];
    var value = 0.0;
    if (id < p.vocab) {
        value = table[id * p.hidden + col];
    }
    out[row * p.hidden + col] = value;
}
