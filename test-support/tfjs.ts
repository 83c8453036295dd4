// Test helpers shared by the TF.js packages: golden vectors, tolerance checks, backends under test.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { nchwToNhwc, nhwcToNchw, useBackend, type BackendName, type HostTensor } from '@codiff/nn';
import { openSafetensorsFile } from '@codiff/nn/node';
import { expect } from 'vitest';

export const GOLDEN_DIR = process.env.CODIFF_GOLDEN ?? resolve(dirname(fileURLToPath(import.meta.url)), '../../shared/golden');
if (!existsSync(join(GOLDEN_DIR, 'README.md'))) {
  throw new Error(`golden vectors not found at ${GOLDEN_DIR}: check out ../shared beside the repo or set CODIFF_GOLDEN`);
}
export const golden = (...parts: string[]) => join(GOLDEN_DIR, ...parts);
export const goldenJson = (...parts: string[]) => JSON.parse(readFileSync(golden(...parts), 'utf8'));

export async function readAll(...parts: string[]): Promise<Map<string, HostTensor>> {
  const f = await openSafetensorsFile(golden(...parts));
  try {
    return await f.readAll();
  } finally {
    await f.close();
  }
}

/** A golden NCHW activation as an NHWC tensor. */
export function nhwcTensor(t: HostTensor): tf.Tensor4D {
  const x = nchwToNhwc(t);
  return tf.tensor4d(x.data, x.shape as [number, number, number, number]);
}

/** max|a−b| / max|ref|, the golden README's tolerance measure. */
export function relMaxError(actual: ArrayLike<number>, ref: ArrayLike<number>): number {
  let maxDiff = 0;
  let maxRef = 0;
  for (let i = 0; i < ref.length; i++) {
    maxDiff = Math.max(maxDiff, Math.abs(actual[i] - ref[i]));
    maxRef = Math.max(maxRef, Math.abs(ref[i]));
  }
  return maxDiff / maxRef;
}

/**
 * The golden README's check for a float32 port: max|Δ| ≤ 1e-4·max|ref| and mean|Δ| ≤ 1e-5·max|ref|. Rank-4
 * results are NHWC and compared with NCHW references. Reads asynchronously: WebGPU in Node cannot read back
 * synchronously.
 */
export async function expectClose(actual: tf.Tensor, ref: HostTensor, what: string): Promise<void> {
  const data = (await actual.data()) as Float32Array;
  const got = actual.rank === 4 ? nhwcToNchw({ shape: actual.shape, data }).data : data;
  expect(got.length, `${what}: size`).toBe(ref.data.length);
  let maxDiff = 0, sumDiff = 0, maxRef = 0;
  for (let i = 0; i < ref.data.length; i++) {
    const d = Math.abs(got[i] - ref.data[i]);
    maxDiff = Math.max(maxDiff, d);
    sumDiff += d;
    maxRef = Math.max(maxRef, Math.abs(ref.data[i]));
  }
  expect(maxDiff / maxRef, `${what}: max|Δ|/max|ref|`).toBeLessThanOrEqual(1e-4);
  expect(sumDiff / ref.data.length / maxRef, `${what}: mean|Δ|/max|ref|`).toBeLessThanOrEqual(1e-5);
}

/**
 * cpu and wasm always; webgpu where it initialises (in CI: Dawn on SwiftShader, which `npm test` installs). A
 * missing webgpu is reported, not silently dropped.
 */
export async function backendsUnderTest(): Promise<BackendName[]> {
  const list: BackendName[] = ['cpu', 'wasm'];
  try {
    await useBackend('webgpu');
    list.push('webgpu');
  } catch (e) {
    console.warn(`webgpu tests skipped: ${(e as Error).message}`);
  }
  return list;
}
