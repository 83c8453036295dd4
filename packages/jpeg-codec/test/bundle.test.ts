import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// The published bundle must run in browsers as well as Node: no imports at all (no Node built-ins, no deps).
const dist = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist');

describe('published bundle', () => {
  it.each(['index.js', 'index.cjs'])('%s is self-contained', (file) => {
    const code = readFileSync(join(dist, file), 'utf8');
    expect(code).not.toMatch(/^\s*import\s/m);
    expect(code).not.toMatch(/\brequire\(/);
    expect(code).not.toMatch(/\bprocess\.|\bBuffer\b|['"]node:/);
    expect(code).toMatch(/encodeJpeg/);
  });
});
