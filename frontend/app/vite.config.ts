// Vite builds the chat UI into dist/ (served by `icllm replica serve
// --frontend dist`, or by an assets canister). Relative asset URLs, so the
// page works under any path.
import { defineConfig } from 'vite';

export default defineConfig({
  base: './',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
  },
  // The CPU path's worker imports the engine's wasm-bindgen package (ES module).
  worker: {
    format: 'es',
  },
  server: {
    fs: {
      // The local-mode packages, frontend/engine_web/pkg and frontend/gpu/pkg, sit outside this folder.
      allow: ['..'],
    },
  },
});
