// Picks the local backend: WebGPU (frontend/gpu's package, in a worker)
// when the browser gives a WebGPU adapter, the app was built with that
// package and its device opens; else the CPU (frontend/engine_web's
// package, the tract engine in a worker); else local mode is not in this
// build.
//
// Vite resolves the globs at build time: without a package its map is
// empty and no code for it is bundled.

import type { LocalBackend } from './backend';
import { cpuBackend } from './cpu';
import { gpuBackend } from './gpu';

export type { ChunkSource, LoadProgress, LocalBackend, LocalGeneration } from './backend';
export { CPU_BACKEND_NAME } from './cpu';
export { GPU_BACKEND_NAME } from './gpu';

// Only whether each package is there: the workers bundle them.
const gpuPackage = import.meta.glob('../../../gpu/pkg/gpu_bg.wasm', { query: '?url', import: 'default' });
const cpuPackage = import.meta.glob('../../../engine_web/pkg/engine_web_bg.wasm', { query: '?url', import: 'default' });

/** Why local mode is off, in words, when it is. */
export const NOT_BUILT =
  'Running on this device is not available in this build: the app was built without a local ' +
  'backend (frontend/engine_web/pkg for the CPU, frontend/gpu/pkg for WebGPU).';

function gpuBuilt(): boolean {
  return Object.keys(gpuPackage).length > 0;
}

function cpuBuilt(): boolean {
  return Object.keys(cpuPackage).length > 0;
}

export function localBackendBuilt(): boolean {
  return gpuBuilt() || cpuBuilt();
}

/** Whether the browser gives a WebGPU adapter. */
export async function webGpuAdapter(): Promise<boolean> {
  const gpu = (navigator as Navigator & { gpu?: { requestAdapter(): Promise<unknown> } }).gpu;
  if (!gpu) return false;
  try {
    return (await gpu.requestAdapter()) != null;
  } catch {
    return false;
  }
}

/** Makes the backend this browser and build allow: WebGPU, else the CPU. */
export async function createLocalBackend(): Promise<LocalBackend> {
  if (gpuBuilt() && (await webGpuAdapter())) {
    const gpu = gpuBackend();
    try {
      console.info(`WebGPU backend on ${await gpu.ready()}`);
      return gpu;
    } catch (err) {
      // WebGPU failed: the CPU path still works, when built.
      gpu.terminate();
      if (!cpuBuilt()) throw err;
      console.warn('The WebGPU backend failed, using the CPU:', err);
    }
  }
  if (cpuBuilt()) {
    const cpu = cpuBackend();
    await cpu.ready();
    return cpu;
  }
  if (gpuBuilt()) throw new Error('This browser offers no WebGPU, and this build has no CPU backend (frontend/engine_web/pkg).');
  throw new Error(NOT_BUILT);
}
