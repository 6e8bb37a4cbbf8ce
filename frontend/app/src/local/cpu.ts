// The CPU backend: the tract engine (frontend/engine_web, wasm32 + SIMD)
// in a Web Worker (cpu.worker.ts).

import { WorkerBackend } from './worker_backend';

export const CPU_BACKEND_NAME = 'CPU (wasm)';

export function cpuBackend(): WorkerBackend {
  return new WorkerBackend(CPU_BACKEND_NAME, new Worker(new URL('./cpu.worker.ts', import.meta.url), { type: 'module' }));
}
