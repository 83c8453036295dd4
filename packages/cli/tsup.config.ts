import { defineConfig } from 'tsup';

export default defineConfig([
  // The library API, for programs that drive the CLI's commands.
  { entry: ['src/index.ts'], format: ['esm', 'cjs'], dts: true, sourcemap: true, target: 'node20' },
  // The executable: ESM only (top-level await).
  { entry: ['src/bin.ts'], format: ['esm'], sourcemap: true, target: 'node20' },
]);
