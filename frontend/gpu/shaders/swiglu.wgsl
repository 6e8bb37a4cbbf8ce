// SwiGLU gate: out = silu(gate) * up, silu(g) = g * sigmoid(g), elementwise
// over len values. x and y of the grid together index the element.

struct Params {
    len: u32,
    row_stride: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> gate: array<f32>;
@group(0) @binding(2) var<storage, read> up: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.y * p.row_stride + gid.x;
    if (gid.x >= p.row_stride || i >= p.len) {
        return;
    }
    let g = gate[i];
    let sig = 1.0 / (1.0 + exp(-g));
    out[i] = g * sig * up[i];
}
