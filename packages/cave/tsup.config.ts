import { defineConfig } from 'tsup';
import { libraryBuild } from '../../tsup.shared.js';

// The node entry finds the bundled model from import.meta.url, which the CJS build emulates (shims); the ESM
// build needs none, which keeps the main entry free of Node imports.
const entry = ['src/index.ts', 'src/node.ts'];
export default defineConfig([libraryBuild(entry, { format: ['esm'], clean: false }), libraryBuild(entry, { format: ['cjs'], shims: true, clean: false })]);
