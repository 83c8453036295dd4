import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { nchwToNhwc, nhwcToNchw, type HostTensor } from '@codiff/nn';
import { openSafetensorsFile } from '@codiff/nn/node';
import { expect } from 'vitest';

export const GOLDEN_DIR =
  process.env.CODIFF_GOLDEN ?? resolve(dirname(fileURLToPath(import.meta.url)), '../../../../shared/golden');
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

/**
 * The golden README's check for a float32 port: max|Δ| ≤ 1e-4·max|ref| and mean|Δ| ≤ 1e-5·max|ref|. NHWC results
 * are compared with NCHW references.
 */
export function expectClose(actual: tf.Tensor, ref: HostTensor, what: string): void {
  const data = actual.dataSync() as Float32Array;
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
