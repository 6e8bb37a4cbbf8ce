// The WebGPU path's Web Worker: frontend/gpu's WGSL forward pass (wgpu on
// the browser's WebGPU, wasm-bindgen) off the page's thread. `init` opens
// the device, so that a browser whose WebGPU fails is found before any
// download; the model is assembled from the pieces the page sends (each
// stage chunk checked again against the manifest), its weights uploaded,
// and each token waits for its logits from the GPU, so a `cancel` arrives
// between tokens.

import type { ToWorker, GpuModule, GpuDevice, GpuChatModel } from './protocol';
import { ModelAssembly, generationResult, post, serve } from './worker_host';

const modules = import.meta.glob<GpuModule>('../../../gpu/pkg/gpu.js', { eager: true });
const wasmUrls = import.meta.glob<string>('../../../gpu/pkg/gpu_bg.wasm', {
  eager: true,
  query: '?url',
  import: 'default',
});

let gpu: { module: GpuModule; device: GpuDevice } | null = null;
async function openGpu(): Promise<{ module: GpuModule; device: GpuDevice }> {
  if (gpu) return gpu;
  const module = Object.values(modules)[0];
  const wasm = Object.values(wasmUrls)[0];
  if (!module || !wasm) throw new Error('This build has no WebGPU engine (frontend/gpu/pkg).');
  await module.default({ module_or_path: wasm });
  gpu = { module, device: await module.WebGpu.open() };
  return gpu;
}

const assembly = new ModelAssembly<InstanceType<GpuModule['GpuModelLoader']>>();
let model: GpuChatModel | null = null;
const cancelled = new Set<number>();

async function generate(id: number, m: Extract<ToWorker, { type: 'generate' }>): Promise<void> {
  if (!model) throw new Error('No model is loaded.');
  const s = m.settings;
  const started = performance.now();
  let firstAt = started;
  let steps = 0;
  try {
    const run = await model.generate(JSON.stringify(m.messages), s.maxNewTokens, s.temperature, s.topP, s.seed, (text) => {
      if (++steps === 1) firstAt = performance.now();
      if (text !== '') post({ type: 'token', id, text });
      return !cancelled.has(id);
    });
    try {
      post({ type: 'done', id, result: generationResult(run, { started, firstAt, ended: performance.now() }) });
    } finally {
      run.free();
    }
  } finally {
    cancelled.delete(id);
  }
}

async function handle(m: ToWorker): Promise<void> {
  switch (m.type) {
    case 'init': {
      const { device } = await openGpu();
      post({ type: 'ready', detail: device.adapter });
      return;
    }
    case 'load': {
      const { module } = await openGpu();
      model?.free();
      model = null;
      assembly.start(new module.GpuModelLoader(m.manifest));
      return;
    }
    case 'tokenizer-chunk':
    case 'stage-chunk':
      assembly.add(m);
      return;
    case 'finish': {
      const { device } = await openGpu();
      const l = assembly.take();
      post({ type: 'progress', phase: 'uploading the weights to the GPU' });
      try {
        model = l.finish(device);
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
