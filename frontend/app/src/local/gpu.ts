// The WebGPU backend: frontend/gpu's WGSL forward pass (wgpu on the
// browser's WebGPU) in a Web Worker (gpu.worker.ts).

import { WorkerBackend } from './worker_backend';

export const GPU_BACKEND_NAME = 'WebGPU';

export function gpuBackend(): WorkerBackend {
  return new WorkerBackend(GPU_BACKEND_NAME, new Worker(new URL('./gpu.worker.ts', import.meta.url), { type: 'module' }));
}
