import { defineConfig } from 'tsup';
import { libraryBuild } from '../../tsup.shared.js';

// The data worker is its own entry: worker threads load it by path next to node.js. The CJS build emulates
// import.meta.url (shims); the ESM build needs none, which keeps the main entry free of Node imports.
const entry = ['src/index.ts', 'src/node.ts', 'src/data-worker.ts'];
export default defineConfig([
  libraryBuild(entry, { format: ['esm'], clean: false }),
  libraryBuild(entry, { format: ['cjs'], shims: true, clean: false }),
]);
