// Causal grouped-query attention over the KV cache.
// One workgroup per (query head, row); row r is at position start_pos + r
// and attends to cache positions 0..=start_pos + r. Query head h reads kv
// head h / (heads / kv_heads). Three passes over the positions, each split
// across the 64 invocations:
//   1. scores[pos] = dot(q, k[pos]) * scale, and their maximum;
//   2. scores[pos] = exp(scores[pos] - max), and their sum;
//   3. out[d] = sum_pos scores[pos] * v[pos, d] / sum.
// Scores live in a scratch buffer [rows * heads, capacity].

struct Params {
    rows: u32,
    heads: u32,
    kv_heads: u32,
    head_dim: u32,
    start_pos: u32,
    capacity: u32,
    scale: f32,
    _pad: u32,
}

const WG: u32 = 64u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k_cache: array<f32>;
@group(0) @binding(3) var<storage, read> v_cache: array<f32>;
@group(0) @binding(4) var<storage, read_write> scores: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

var<workgroup> red: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let h = wg.x;
    let row = wg.y;
    if (h >= p.heads || row >= p.rows) {
        return;
    }
    let ctx = min(p.start_pos + row + 1u, p.capacity);
    let kvh = h / (p.heads / p.kv_heads);
    let qbase = (row * p.heads + h) * p.head_dim;
    let sbase = (row * p.heads + h) * p.capacity;
    let cbase = kvh * p.capacity * p.head_dim;

    var local_max = -3.0e38;
    for (var pos = lid; pos < ctx; pos += WG) {
        let kb = cbase + pos * p.head_dim;
        var acc = 0.0;
        for (var d = 0u; d < p.head_dim; d++) {
            acc += q[qbase + d] * k_cache[kb + d];
        }
        let s = acc * p.scale;
        scores[sbase + pos] = s;
        local_max = max(local_max, s);
    }
    red[lid] = local_max;
    workgroupBarrier();
    for (var stride = WG / 2u; stride > 0u; stride >>= 1u) {
        if (lid < stride) {
            red[lid] = max(red[lid], red[lid + stride]);
        }
        workgroupBarrier();
    }
    let m = red[0];
    workgroupBarrier();

    var local_sum = 0.0;
    for (var pos = lid; pos < ctx; pos += WG) {
        let e = exp(scores[sbase + pos] - m);
        scores[sbase + pos] = e;
        local_sum += e;
    }
    red[lid] = local_sum;
    workgroupBarrier();
    for (var stride = WG / 2u; stride > 0u; stride >>= 1u) {
        if (lid < stride) {
            red[lid] += red[lid + stride];
        }
        workgroupBarrier();
    }
    let inv_sum = 1.0 / red[0];
    // Pass 3 reads scores other invocations wrote.
    storageBarrier();

    for (var d = lid; d < p.head_dim; d += WG) {
        var acc = 0.0;
        for (var pos = 0u; pos < ctx; pos++) {
            acc += scores[sbase + pos] * v_cache[cbase + pos * p.head_dim + d];
        }
        out[qbase + d] = acc * inv_sum;
    }
}
