import { defineConfig, type Options } from 'tsup';

/**
 * Build settings shared by the library packages: ESM + CJS + .d.ts. TF.js stays external so an application has
 * one tfjs-core; `overrides` adjust per package.
 */
export function libraryBuild(entry: string[], overrides: Options = {}) {
  return defineConfig({
    entry,
    format: ['esm', 'cjs'],
    dts: true,
    clean: true,
    sourcemap: true,
    target: 'es2022',
    external: [/^@tensorflow\//],
    ...overrides,
  });
}
