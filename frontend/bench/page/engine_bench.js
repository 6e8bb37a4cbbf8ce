// The project's browser CPU path on the same page: frontend/engine_web (the
// tract engine for wasm32 with SIMD, wasm-bindgen) on the model's
// `stages-1` files, fed chunk by chunk as the app feeds it. One prefill of
// the fixture prompt, then greedy decode steps. `run.mjs` calls
// `window.engineBench` (execution provider "engine-web").
import init, { WebModelLoader } from '/engine_web/engine_web.js';

let ready = null;

async function bytes(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return new Uint8Array(await response.arrayBuffer());
}

window.engineBench = async function engineBench({ name, ids, decode }) {
  ready ??= init();
  await ready;
  const dir = `/models/${name}/stages-1/`;
  const t0 = performance.now();
  const manifestBytes = await bytes(dir + 'manifest.json');
  const manifest = JSON.parse(new TextDecoder().decode(manifestBytes));
  const loader = new WebModelLoader(manifestBytes);
  const tokenizer = await bytes(dir + manifest.tokenizer.file);
  for (let i = 0; i * manifest.chunk_size < tokenizer.length; i++) {
    loader.addTokenizerChunk(i, tokenizer.subarray(i * manifest.chunk_size, (i + 1) * manifest.chunk_size));
  }
  for (const stage of manifest.stages) {
    const file = await bytes(dir + stage.file);
    stage.chunks.forEach((c, i) => loader.addStageChunk(stage.index, i, file.subarray(c.offset, c.offset + c.size)));
  }
  const model = loader.finish();
  const loadMs = performance.now() - t0;
  const run = () => {
    const r = model.startTokens(Uint32Array.from(ids), decode, 0, 1, new Uint8Array(32));
    const p0 = performance.now();
    r.step();
    const p1 = performance.now();
    while (r.step() !== undefined);
    const p2 = performance.now();
    const tokens = Array.from(r.tokens);
    r.free();
    return { tokens, prefillMs: p1 - p0, decodeMs: p2 - p1 };
  };
  // As for onnxruntime-web: a warm-up run, then the measured one.
  run();
  const measured = run();
  model.free();
  return {
    ep: 'engine-web',
    loadMs,
    prefillTokens: ids.length,
    prefillMs: measured.prefillMs,
    decodeTokens: measured.tokens.length - 1,
    decodeMs: measured.decodeMs,
    tokens: measured.tokens,
    threads: 1,
    crossOriginIsolated: self.crossOriginIsolated,
  };
};
