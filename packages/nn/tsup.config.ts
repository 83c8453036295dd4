import { defineConfig } from 'tsup';
import { libraryBuild } from '../../tsup.shared.js';

// TF.js's gradient registrations exist only as extension-less ESM files that Node cannot load: bundle them
// (they register into TF.js's global registry) and keep the rest of TF.js external.
const options = {
  external: [/^@tensorflow\/(?!tfjs-core\/dist\/register_all_gradients)/],
  noExternal: [/register_all_gradients/],
};
// Node-only paths resolve packages from import.meta.url, which the CJS build must emulate (shims). The ESM build
// takes no shims: tsup's ESM shims import Node's path/url, which would keep the main entry out of browsers.
export default defineConfig([
  libraryBuild(['src/index.ts', 'src/node.ts'], { ...options, format: ['esm'], clean: false }),
  libraryBuild(['src/index.ts', 'src/node.ts'], { ...options, format: ['cjs'], shims: true, clean: false }),
]);
