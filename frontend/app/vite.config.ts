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
  server: {
    fs: {
      // The local-mode package, frontend/gpu/pkg, sits outside this folder.
      allow: ['..'],
    },
  },
});
