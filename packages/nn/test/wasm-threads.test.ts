import { spawnSync } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { NnError, useBackend } from '../src/index.js';

const packageDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');

// A conv forward and its gradients (our registered wasm Conv2D gradient) on seeded inputs, as JSON.
const SCRIPT = `
import * as tf from '@tensorflow/tfjs-core';
import { useBackend } from '@codiff/nn';
import { getThreadsCount } from '@tensorflow/tfjs-backend-wasm';
await useBackend('wasm');
const x = tf.randomNormal([2, 24, 24, 32], 0, 1, 'float32', 1);
const w = tf.randomNormal([3, 3, 32, 48], 0, 0.1, 'float32', 2);
const f = (a, b) => tf.sum(tf.square(tf.conv2d(a, b, 1, 'same')));
const [dx, dw] = tf.grads(f)([x, w]);
const y = tf.conv2d(x, w, 1, 'same');
console.log(JSON.stringify({ threads: getThreadsCount(), y: Array.from(await y.data()), dx: Array.from(await dx.data()), dw: Array.from(await dw.data()) }));
`;

function runInNode(env: Record<string, string>) {
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', SCRIPT], {
    cwd: packageDir,
    env: { ...process.env, ...env },
    encoding: 'utf8',
    timeout: 60_000,
    maxBuffer: 64 << 20,
  });
  expect(r.status, r.stderr).toBe(0); // also: it exits by itself, the pool's workers do not hold it open
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<'y' | 'dx' | 'dw', number[]> & { threads: number };
}

function relMax(a: number[], b: number[]): number {
  let d = 0, m = 0;
  for (let i = 0; i < b.length; i++) {
    d = Math.max(d, Math.abs(a[i] - b[i]));
    m = Math.max(m, Math.abs(b[i]));
  }
  return d / m;
}

describe('wasm with worker threads in Node', () => {
  it('runs 2 threads (CODIFF_WASM_THREADS) and computes what 1 thread computes, forward and gradients', () => {
    const one = runInNode({ CODIFF_WASM_THREADS: '1' });
    const two = runInNode({ CODIFF_WASM_THREADS: '2' });
    expect(one.threads).toBe(1);
    expect(two.threads).toBe(2);
    for (const k of ['y', 'dx', 'dw'] as const) expect(relMax(two[k], one[k]), k).toBeLessThanOrEqual(1e-5);
  });

  it('rejects bad thread counts and a change after the backend started', async () => {
    await expect(useBackend('wasm', { threads: 0 })).rejects.toThrow(/wasm threads must be an integer 1..8, got 0/);
    await expect(useBackend('wasm', { threads: 1.5 })).rejects.toThrow(NnError);
    await useBackend('wasm');
    tf.tidy(() => tf.add(1, 1));
    await expect(useBackend('wasm', { threads: 2 })).rejects.toThrow(/already runs with 1 thread\(s\); choose threads before its first use/);
  });
});
