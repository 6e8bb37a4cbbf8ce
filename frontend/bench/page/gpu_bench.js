// The project's WebGPU path on the same page: frontend/gpu (the WGSL
// forward pass, wgpu on the browser's WebGPU, wasm-bindgen) on the model's
// `stages-1` files, fed chunk by chunk as the chat UI feeds it. One prefill
// of the fixture prompt, then greedy decode steps, each waiting for its
// logits from the GPU. `run.mjs` calls `window.gpuBench` (execution
// provider "wgsl").
import init, { WebGpu, GpuModelLoader } from '/gpu/gpu.js';

let ready = null;

async function bytes(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return new Uint8Array(await response.arrayBuffer());
}

window.gpuBench = async function gpuBench({ name, ids, decode }) {
  ready ??= init().then(() => WebGpu.open());
  const gpu = await ready;
  const dir = `/models/${name}/stages-1/`;
  const t0 = performance.now();
  const manifestBytes = await bytes(dir + 'manifest.json');
  const manifest = JSON.parse(new TextDecoder().decode(manifestBytes));
  const loader = new GpuModelLoader(manifestBytes);
  const tokenizer = await bytes(dir + manifest.tokenizer.file);
  for (let i = 0; i * manifest.chunk_size < tokenizer.length; i++) {
    loader.addTokenizerChunk(i, tokenizer.subarray(i * manifest.chunk_size, (i + 1) * manifest.chunk_size));
  }
  for (const stage of manifest.stages) {
    const file = await bytes(dir + stage.file);
    stage.chunks.forEach((c, i) => loader.addStageChunk(stage.index, i, file.subarray(c.offset, c.offset + c.size)));
  }
  // The KV cache as long as the run needs, not the model's whole context.
  const model = loader.finish(gpu, ids.length + decode);
  loader.free();
  const loadMs = performance.now() - t0;
  const run = async () => {
    const p0 = performance.now();
    let p1 = p0;
    let steps = 0;
    const r = await model.generateTokens(Uint32Array.from(ids), decode, 0, 1, new Uint8Array(32), () => {
      if (++steps === 1) p1 = performance.now();
      return true;
    });
    const p2 = performance.now();
    const tokens = Array.from(r.tokens);
    r.free();
    return { tokens, prefillMs: p1 - p0, decodeMs: p2 - p1 };
  };
  // As for the others: a warm-up run (shader compilation), then the measured one.
  await run();
  const measured = await run();
  model.free();
  return {
    ep: 'wgsl',
    adapter: gpu.adapter,
    loadMs,
    prefillTokens: ids.length,
    prefillMs: measured.prefillMs,
    decodeTokens: measured.tokens.length - 1,
    decodeMs: measured.decodeMs,
    tokens: measured.tokens,
    threads: 1,
  };
};
