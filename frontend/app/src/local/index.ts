// Picks the local backend: WebGPU (frontend/gpu's package) when the browser
// gives a WebGPU adapter and the app was built with that package; else the
// CPU (frontend/engine_web's package, the tract engine in a Web Worker);
// else local mode is not in this build.
//
// Vite resolves the globs at build time: without a package its map is
// empty and no code for it is bundled.

import type { LocalBackend, LocalBackendModule } from './backend';
import { CpuBackend } from './cpu';

export type { ChunkSource, LoadProgress, LocalBackend, LocalGeneration } from './backend';
export { CPU_BACKEND_NAME } from './cpu';

/** The GPU hook: frontend/gpu/pkg, when built, exports `default()` (init)
 *  and `createLocalBackend(): Promise<LocalBackend>` (see ./backend.ts). */
const gpuPackages = import.meta.glob<LocalBackendModule>('../../../gpu/pkg/*.js');
const cpuPackage = import.meta.glob('../../../engine_web/pkg/engine_web.js');

/** Why local mode is off, in words, when it is. */
export const NOT_BUILT =
  'Running on this device is not available in this build: the app was built without a local ' +
  'backend (frontend/engine_web/pkg for the CPU, frontend/gpu/pkg for WebGPU).';

/** The GPU package's entry module (not wasm-bindgen's `*_bg.js` glue). */
function gpuEntry(): (() => Promise<LocalBackendModule>) | null {
  const names = Object.keys(gpuPackages).filter((p) => !p.endsWith('_bg.js'));
  return names.length > 0 ? gpuPackages[names[0]] : null;
}

function cpuBuilt(): boolean {
  return Object.keys(cpuPackage).length > 0;
}

export function localBackendBuilt(): boolean {
  return gpuEntry() !== null || cpuBuilt();
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

async function gpuBackend(load: () => Promise<LocalBackendModule>): Promise<LocalBackend> {
  const module = await load();
  if (typeof module.createLocalBackend !== 'function') {
    throw new Error('The WebGPU package does not export createLocalBackend(): rebuild frontend/gpu.');
  }
  await module.default();
  return module.createLocalBackend();
}

/** Makes the backend this browser and build allow: WebGPU, else the CPU. */
export async function createLocalBackend(): Promise<LocalBackend> {
  const gpu = gpuEntry();
  if (gpu && (await webGpuAdapter())) {
    try {
      return await gpuBackend(gpu);
    } catch (err) {
      // WebGPU failed: the CPU path still works, when built.
      if (!cpuBuilt()) throw err;
      console.warn('WebGPU backend failed, using the CPU:', err);
    }
  }
  if (cpuBuilt()) return new CpuBackend();
  if (gpu) throw new Error('This browser offers no WebGPU, and this build has no CPU backend (frontend/engine_web/pkg).');
  throw new Error(NOT_BUILT);
}
