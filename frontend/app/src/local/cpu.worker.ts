// The CPU path's Web Worker: the tract engine (frontend/engine_web, wasm32
// with SIMD) off the page's thread. It assembles the model from the pieces
// the page sends (each stage chunk checked again against the manifest by
// the engine), loads it, and generates a token per step, yielding to its
// event loop between tokens so that a `cancel` can arrive.

import type { ToWorker, EngineWebModule, EngineWebModel } from './protocol';
import { ModelAssembly, generationResult, post, serve } from './worker_host';

const modules = import.meta.glob<EngineWebModule>('../../../engine_web/pkg/engine_web.js', { eager: true });
const wasmUrls = import.meta.glob<string>('../../../engine_web/pkg/engine_web_bg.wasm', {
  eager: true,
  query: '?url',
  import: 'default',
});

let engine: EngineWebModule | null = null;
async function loadEngine(): Promise<EngineWebModule> {
  if (engine) return engine;
  const module = Object.values(modules)[0];
  const wasm = Object.values(wasmUrls)[0];
  if (!module || !wasm) throw new Error('This build has no CPU engine (frontend/engine_web/pkg).');
  await module.default({ module_or_path: wasm });
  engine = module;
  return module;
}

const assembly = new ModelAssembly<InstanceType<EngineWebModule['WebModelLoader']>>();
let model: EngineWebModel | null = null;
const cancelled = new Set<number>();

/** Lets queued messages (a cancel) run: a macrotask without timer clamping. */
function yieldToEvents(): Promise<void> {
  return new Promise((resolve) => {
    const channel = new MessageChannel();
    channel.port1.onmessage = () => resolve();
    channel.port2.postMessage(null);
  });
}

async function generate(id: number, m: Extract<ToWorker, { type: 'generate' }>): Promise<void> {
  if (!model) throw new Error('No model is loaded.');
  const s = m.settings;
  const run = model.start(JSON.stringify(m.messages), s.maxNewTokens, s.temperature, s.topP, s.seed);
  try {
    const started = performance.now();
    let firstAt = started;
    for (;;) {
      if (cancelled.has(id)) run.cancel();
      const piece = run.step();
      if (piece === undefined) break;
      if (run.generatedTokens === 1) firstAt = performance.now();
      if (piece !== '') post({ type: 'token', id, text: piece });
      await yieldToEvents();
    }
    post({ type: 'done', id, result: generationResult(run, { started, firstAt, ended: performance.now() }) });
  } finally {
    run.free();
    cancelled.delete(id);
  }
}

async function handle(m: ToWorker): Promise<void> {
  switch (m.type) {
    case 'init':
      await loadEngine();
      post({ type: 'ready', detail: 'tract, wasm32 + SIMD' });
      return;
    case 'load': {
      const e = await loadEngine();
      model?.free();
      model = null;
      assembly.start(new e.WebModelLoader(m.manifest));
      return;
    }
    case 'tokenizer-chunk':
    case 'stage-chunk':
      assembly.add(m);
      return;
    case 'finish': {
      const l = assembly.take();
      post({ type: 'progress', phase: 'loading the model into the engine (tract)' });
      try {
        model = l.finish();
      } finally {
        l.free();
      }
      post({ type: 'loaded', name: model.name });
      return;
    }
    case 'generate':
      return generate(m.id, m);
    case 'cancel':
      return;
  }
}

serve(handle, cancelled);
