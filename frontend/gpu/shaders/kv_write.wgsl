// Appends keys or values to a layer's cache in place:
// cache[head, start_pos + row, d] = src[row, head * head_dim + d],
// the cache laid out [kv_heads, capacity, head_dim].
// x = (head, d), y = row.

struct Params {
    rows: u32,
    kv_heads: u32,
    head_dim: u32,
    start_pos: u32,
    capacity: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> cache: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let width = p.kv_heads * p.head_dim;
    let idx = gid.x;
    let row = gid.y;
    let pos = p.start_pos + row;
    if (idx >= width || row >= p.rows || pos >= p.capacity) {
        return;
    }
    let h = idx / p.head_dim;
    let d = idx % p.head_dim;
    cache[(h * p.capacity + pos) * p.head_dim + d] = src[row * width + idx];
}
