// A TypeScript user must be able to import every entry point, whatever their module system: ESM and CommonJS
// projects with `node16` resolution (which follows the `exports` conditions to .d.ts / .d.cts), and bundler
// resolution. Each consumer is a tiny project type-checked with the repository's tsc, library checks included.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PACKAGES, ROOT, specifier } from './packages.js';

const work = mkdtempSync(join(tmpdir(), 'codiff-consumers-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** One import of every entry point, each binding used so an unresolved type is an error. */
const source = PACKAGES.flatMap((pkg, i) =>
  pkg.entries.map((entry, j) => `import * as m${i}_${j} from '${specifier(pkg.name, entry)}';\nexport const k${i}_${j}: string[] = Object.keys(m${i}_${j});`),
).join('\n');

const consumers = {
  'ESM, node16': { type: 'module', compilerOptions: { module: 'node16', moduleResolution: 'node16' } },
  'CommonJS, node16': { type: 'commonjs', compilerOptions: { module: 'node16', moduleResolution: 'node16' } },
  'ESM, bundler': { type: 'module', compilerOptions: { module: 'esnext', moduleResolution: 'bundler' } },
} as const;

describe('every entry point type-checks for every kind of TypeScript consumer', () => {
  for (const [name, { type, compilerOptions }] of Object.entries(consumers)) {
    it(name, () => {
      const dir = join(work, name.replace(/\W+/g, '-'));
      mkdirSync(dir);
      symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
      writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type }));
      writeFileSync(
        join(dir, 'tsconfig.json'),
        JSON.stringify({ compilerOptions: { ...compilerOptions, target: 'es2022', strict: true, noEmit: true, skipLibCheck: false, lib: ['es2022', 'dom'], types: ['node'] }, files: ['index.ts'] }),
      );
      writeFileSync(join(dir, 'index.ts'), source);
      const tsc = spawnSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', dir], { encoding: 'utf8' });
      // Errors inside third-party declaration files are theirs; ours and the imports must be clean.
      const ours = tsc.stdout.split('\n').filter((line) => /error TS/.test(line) && !line.includes('node_modules/') || /^index\.ts/.test(line) || /node_modules\/@codiff\//.test(line));
      expect(ours, tsc.stdout).toEqual([]);
    });
  }
});
