// Test helpers shared by the TF.js packages: golden vectors, tolerance checks, backends under test.
import * as tf from '@tensorflow/tfjs-core';
import { nchwToNhwc, nhwcToNchw, useBackend, type BackendName, type HostTensor } from '@codiff/nn';
import { readSafetensorsFile } from '@codiff/nn/node';
import { expect } from 'vitest';
import { golden } from './golden.js';

export { golden, goldenJson, relMaxError } from './golden.js';

export const readAll = (...parts: string[]): Promise<Map<string, HostTensor>> => readSafetensorsFile(golden(...parts));

/** A tensor of a golden file, or a clear failure naming the missing key. */
export function tensorAt(m: ReadonlyMap<string, HostTensor>, key: string): HostTensor {
  const t = m.get(key);
  if (!t) throw new Error(`golden tensor ${key} missing`);
  return t;
}

/** A golden NCHW activation as an NHWC tensor. */
export function nhwcTensor(t: HostTensor): tf.Tensor4D {
  const x = nchwToNhwc(t);
  return tf.tensor4d(x.data, x.shape as [number, number, number, number]);
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

/** Relative L2 error and cosine of a gradient against the reference (NCHW), as the golden README asks. */
export async function gradientAgreement(grad: tf.Tensor, ref: HostTensor): Promise<{ relL2: number; cosine: number }> {
  const got = nhwcToNchw({ shape: grad.shape, data: (await grad.data()) as Float32Array }).data;
  let diff = 0, norm = 0, dot = 0, gotNorm = 0;
  for (let i = 0; i < ref.data.length; i++) {
    diff += (got[i] - ref.data[i]) ** 2;
    norm += ref.data[i] ** 2;
    gotNorm += got[i] ** 2;
    dot += got[i] * ref.data[i];
  }
  return { relL2: Math.sqrt(diff / norm), cosine: dot / Math.sqrt(norm * gotNorm) };
}
