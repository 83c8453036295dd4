import { defineConfig } from 'tsup';

export default defineConfig({
  entry: ['src/index.ts', 'src/node.ts'],
  format: ['esm', 'cjs'],
  dts: true,
  clean: true,
  sourcemap: true,
  target: 'es2022',
  // One tfjs-core per application: never bundle it, except its gradient registrations, which exist only as
  // extension-less ESM files that Node cannot load; bundled, they register into the shared global registry.
  external: [/^@tensorflow\/(?!tfjs-core\/dist\/register_all_gradients)/],
  noExternal: [/register_all_gradients/],
});
