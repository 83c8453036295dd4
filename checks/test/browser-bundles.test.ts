import { builtinModules } from 'node:module';
import { join } from 'node:path';
import { build } from 'esbuild';
import { describe, expect, it } from 'vitest';
import { PACKAGES } from './packages.js';

const NODE_BUILTINS = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));

/** Bundle one file for the browser as an application would; esbuild fails on any Node built-in it meets. */
async function browserBundle(entry: string) {
  return build({ entryPoints: [entry], bundle: true, platform: 'browser', format: 'esm', write: false, metafile: true, logLevel: 'silent' });
}

/** Packages that are Node programs by purpose, not libraries for pages. */
const NODE_PROGRAMS = new Set(['@codiff/cli']);

describe('every library’s main entry bundles for the browser with no Node built-in', () => {
  // @codiff/web has no main entry: its browser side is the built page (tested in Chromium), its entry is ./node.
  for (const pkg of PACKAGES.filter((p) => !NODE_PROGRAMS.has(p.name) && p.entries.includes('.'))) {
    it(pkg.name, async () => {
      const result = await browserBundle(join(pkg.dir, pkg.json.exports['.'].import.default)).catch((e: { errors?: { text: string }[] }) => {
        throw new Error(`${pkg.name} does not bundle for the browser:\n${(e.errors ?? []).map((x) => x.text).join('\n')}`);
      });
      const imports = Object.values(result.metafile.inputs).flatMap((input) => input.imports.map((i) => i.path));
      expect(imports.filter((path) => NODE_BUILTINS.has(path))).toEqual([]);
    });
  }

  it('a Node-only import in a main entry would be caught', async () => {
    await expect(browserBundle(join(PACKAGES.find((p) => p.name === '@codiff/image-io')!.dir, 'dist/node.js'))).rejects.toThrow();
  });

  it('@codiff/metrics needs no TF.js: no dependency, nothing of @tensorflow in its bundle', async () => {
    const metrics = PACKAGES.find((p) => p.name === '@codiff/metrics')!;
    expect(metrics.json.dependencies ?? {}).toEqual({});
    const result = await browserBundle(join(metrics.dir, 'dist/index.js'));
    expect(Object.keys(result.metafile.inputs).filter((path) => path.includes('@tensorflow'))).toEqual([]);
  });
});
