// Finds the local backend: the wasm package `frontend/gpu/pkg/` when it was
// built before this app, or nothing ("not available in this build").
//
// Vite resolves the glob at build time: without the package the map is
// empty and no code for it is bundled.

import type { LocalBackend, LocalBackendModule } from './backend';

export type { ChunkSource, LoadProgress, LocalBackend, LocalGeneration } from './backend';

const packages = import.meta.glob<LocalBackendModule>('../../../gpu/pkg/*.js');

/** Why local mode is off, in words, when it is. */
export const NOT_BUILT =
  'Running on this device is not available in this build: the app was built without the ' +
  'local backend (frontend/gpu/pkg).';

/** The entry module of the package (not wasm-bindgen's `*_bg.js` glue or snippets). */
function entry(): (() => Promise<LocalBackendModule>) | null {
  const names = Object.keys(packages).filter((p) => !p.endsWith('_bg.js'));
  return names.length > 0 ? packages[names[0]] : null;
}

export function localBackendBuilt(): boolean {
  return entry() !== null;
}

/** Loads the package and makes its backend (picking WebGPU or the CPU). */
export async function createLocalBackend(): Promise<LocalBackend> {
  const load = entry();
  if (!load) throw new Error(NOT_BUILT);
  const module = await load();
  if (typeof module.createLocalBackend !== 'function') {
    throw new Error(
      'The local backend package does not export createLocalBackend(): rebuild frontend/gpu.',
    );
  }
  await module.default();
  return module.createLocalBackend();
}
