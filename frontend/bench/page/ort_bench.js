// onnxruntime-web on the unsplit decoder ONNX (the optimum layout the
// project's stages are cut from): one prefill of the prompt, then greedy
// one-token decode steps feeding `present.*` back as `past_key_values.*`,
// as the engine and scripts/ort_bench.py do. `run.mjs` calls `window.ortBench`.
import * as ort from '/ort/ort.webgpu.min.mjs';

ort.env.wasm.wasmPaths = '/ort/';

function log(line) {
  document.getElementById('log').textContent += line + '\n';
}

function argmax(data, offset, n) {
  let best = 0;
  for (let i = 1; i < n; i++) if (data[offset + i] > data[offset + best]) best = i;
  return best;
}

async function step(session, kv, ids, start) {
  const n = ids.length;
  const feeds = {
    input_ids: new ort.Tensor('int64', BigInt64Array.from(ids, BigInt), [1, n]),
    attention_mask: new ort.Tensor('int64', new BigInt64Array(start + n).fill(1n), [1, start + n]),
    position_ids: new ort.Tensor('int64', BigInt64Array.from({ length: n }, (_, i) => BigInt(start + i)), [1, n]),
  };
  for (const name of kv.names) feeds[name] = kv.past[name];
  const out = await session.run(feeds);
  for (const name of kv.names) {
    const old = kv.past[name];
    kv.past[name] = out[name.replace('past_key_values.', 'present.')];
    if (old.dispose) old.dispose();
  }
  const logits = out.logits;
  const vocab = logits.dims[2];
  const data = await logits.getData();
  const next = argmax(data, (n - 1) * vocab, vocab);
  logits.dispose?.();
  return next;
}

// One execution provider: load, prefill `ids`, decode `decode` tokens.
window.ortBench = async function ortBench({ model, ep, ids, decode, kvHeads, headDim, threads }) {
  if (threads) ort.env.wasm.numThreads = threads;
  const t0 = performance.now();
  const bytes = new Uint8Array(await (await fetch(model)).arrayBuffer());
  const session = await ort.InferenceSession.create(bytes, {
    executionProviders: [ep],
    graphOptimizationLevel: 'all',
  });
  const loadMs = performance.now() - t0;
  const names = session.inputNames.filter((n) => n.startsWith('past_key_values.'));
  const kv = { names, past: {} };
  const run = async () => {
    for (const name of names) {
      kv.past[name] = new ort.Tensor('float32', new Float32Array(0), [1, kvHeads, 0, headDim]);
    }
    const p0 = performance.now();
    const tokens = [await step(session, kv, ids, 0)];
    const p1 = performance.now();
    let pos = ids.length;
    for (let i = 1; i < decode; i++) {
      tokens.push(await step(session, kv, [tokens[tokens.length - 1]], pos));
      pos += 1;
    }
    const p2 = performance.now();
    return { tokens, prefillMs: p1 - p0, decodeMs: p2 - p1 };
  };
  // The first run warms up (shader compilation, allocations); the second is measured.
  await run();
  const measured = await run();
  await session.release();
  log(`${ep}: prefill ${ids.length} in ${measured.prefillMs.toFixed(1)} ms, ` +
      `decode ${decode - 1} in ${measured.decodeMs.toFixed(1)} ms`);
  return {
    ep,
    loadMs,
    prefillTokens: ids.length,
    prefillMs: measured.prefillMs,
    decodeTokens: decode - 1,
    decodeMs: measured.decodeMs,
    tokens: measured.tokens,
    threads: ort.env.wasm.numThreads ?? null,
    crossOriginIsolated: self.crossOriginIsolated,
  };
};

window.webgpuAdapter = async function webgpuAdapter() {
  if (!navigator.gpu) return null;
  const adapter = await navigator.gpu.requestAdapter();
  if (!adapter) return null;
  const info = adapter.info ?? {};
  return { vendor: info.vendor, architecture: info.architecture, description: info.description, isFallbackAdapter: adapter.isFallbackAdapter ?? info.isFallbackAdapter };
};
