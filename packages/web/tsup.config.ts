import { defineConfig } from 'tsup';

// The Node side only (the page itself is Vite's build in dist/site, which this must not clean away).
export default defineConfig([
  { entry: ['src/node.ts'], format: ['esm', 'cjs'], dts: true, sourcemap: true, target: 'node20', clean: false },
  { entry: ['src/serve.ts'], format: ['esm'], sourcemap: true, target: 'node20', clean: false },
]);
