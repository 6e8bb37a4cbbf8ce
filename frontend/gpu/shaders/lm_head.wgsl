// Tied LM head: logits[r, v] = dot(x[first_row + r, :], embed[v, :]), the
// embedding table [vocab, hidden] used as the output projection; hidden is
// a multiple of 4 (the host checks), so rows are read as vec4s.
// One invocation per (vocabulary entry, row): x = entry, y = row.

struct Params {
    rows: u32,
    first_row: u32,
    hidden: u32,
    vocab: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> embed: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> logits: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let v = gid.x;
    let r = gid.y;
    if (v >= p.vocab || r >= p.rows) {
        return;
    }
    let h4 = p.hidden / 4u;
    let xb = (p.first_row + r) * h4;
    let eb = v * h4;
    var acc = vec4<f32>(0.0);
    for (var i = 0u; i < h4; i++) {
        acc += x[xb + i] * embed[eb + i];
    }
    logits[r * p.vocab + v] = acc.x + acc.y + acc.z + acc.w;
}
