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

  it('refuses work the 4 GiB heap cannot hold with OUT_OF_MEMORY, before the module hangs on it, and stays usable', () => {
    const script = `
import * as tf from '@tensorflow/tfjs-core';
import { useBackend } from '@codiff/nn';
await useBackend('wasm', { threads: 2 });
const quarter = () => tf.zeros([64 * 1024 * 1024]); // 256 MiB
const big = tf.zeros([192 * 1024 * 1024]); // 768 MiB: a reduction of it needs a transposed copy
const views = [tf.reshape(big, [1024, -1]), tf.expandDims(big, 0)]; // no new memory: not counted
const kept = [big];
let refusal;
try { for (let i = 0; i < 20; i++) kept.push(quarter()); } catch (e) { refusal = { code: e.code, message: e.message, kept: kept.length }; }
let scratch;
try { tf.sum(big, 0); } catch (e) { scratch = e.message; }
tf.dispose([...kept, ...views]);
const tensors = tf.memory().numTensors;
console.log(JSON.stringify({ refusal, scratch, tensors, after: Array.from(tf.tidy(() => tf.add(tf.scalar(1), 2)).dataSync()) }));
`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: packageDir, encoding: 'utf8', timeout: 60_000 });
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!);
    expect(out.refusal.code).toBe('OUT_OF_MEMORY');
    expect(out.refusal.kept).toBe(12); // 768 MiB + 11 × 256 MiB = 3.5 GiB
    expect(out.refusal.message).toBe('the wasm backend ran out of memory: a new tensor needs 0.25 GiB beside 3.50 GiB of tensors, and its heap holds 4 GiB');
    expect(out.scratch).toMatch(/^the wasm backend ran out of memory: Sum's scratch needs 0\.75 GiB beside 3\.50 GiB of tensors/);
    expect(out.after).toEqual([3]);
    expect(out.tensors).toBe(0);
  }, 90_000);
});
