import { libraryBuild } from '../../tsup.shared.js';

// TF.js's gradient registrations exist only as extension-less ESM files that Node cannot load: bundle them
// (they register into TF.js's global registry) and keep the rest of TF.js external.
export default libraryBuild(['src/index.ts', 'src/node.ts'], {
  external: [/^@tensorflow\/(?!tfjs-core\/dist\/register_all_gradients)/],
  noExternal: [/register_all_gradients/],
  // wasm-threads.ts resolves the TF.js bundle from import.meta.url, which the CJS build must emulate.
  shims: true,
});
