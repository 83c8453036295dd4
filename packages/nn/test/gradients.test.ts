import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { conv2dFilterGradient, conv2dInputGradient, useBackend } from '../src/index.js';

/** ‖a − b‖₂ / ‖b‖₂ */
export function relL2(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < b.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += b[i] ** 2;
  }
  return Math.sqrt(num / den);
}

type Case = { name: string; x: [number, number, number, number]; k: number; cout: number; stride: number; pad: number | 'valid' | 'same' };
const CASES: Case[] = [
  { name: '3×3 pad 1', x: [2, 7, 9, 4], k: 3, cout: 5, stride: 1, pad: 1 },
  { name: '1×1', x: [1, 5, 4, 6], k: 1, cout: 3, stride: 1, pad: 0 },
  { name: '3×3 stride 2 pad 1', x: [1, 8, 10, 4], k: 3, cout: 6, stride: 2, pad: 1 },
  { name: '3×3 stride 2 valid, odd size', x: [2, 9, 7, 3], k: 3, cout: 2, stride: 2, pad: 'valid' },
  { name: '3×3 same', x: [1, 6, 6, 2], k: 3, cout: 4, stride: 1, pad: 'same' },
  // Batches of 8 or more take the batch-as-channels convolution for dW.
  { name: 'batch 8: 3×3 pad 1', x: [8, 7, 9, 4], k: 3, cout: 5, stride: 1, pad: 1 },
  { name: 'batch 8: 4×4 stride 4 (CaVE’s downsampler)', x: [8, 12, 16, 3], k: 4, cout: 5, stride: 4, pad: 'valid' },
  { name: 'batch 8: 3×3 stride 2 valid, odd size', x: [8, 9, 7, 3], k: 3, cout: 2, stride: 2, pad: 'valid' },
];

/** d(Σ w ⊙ conv(x, f))/d{x, f} through the registered gradient on the current backend. */
function grads(c: Case, seed: number) {
  return tf.tidy(() => {
    const x = tf.randomNormal(c.x, 0, 1, 'float32', seed) as tf.Tensor4D;
    const f = tf.randomNormal([c.k, c.k, c.x[3], c.cout], 0, 1, 'float32', seed + 1) as tf.Tensor4D;
    const pad = typeof c.pad === 'number' ? ([[0, 0], [c.pad, c.pad], [c.pad, c.pad], [0, 0]] as [[number, number], [number, number], [number, number], [number, number]]) : c.pad;
    const g = tf.grads((xi: tf.Tensor, fi: tf.Tensor) => {
      const y = tf.conv2d(xi as tf.Tensor4D, fi as tf.Tensor4D, c.stride, pad);
      return tf.sum(tf.mul(y, tf.randomNormal(y.shape, 0, 1, 'float32', seed + 2)));
    });
    const [dx, df] = g([x, f]);
    return { dx: dx.dataSync().slice(), df: df.dataSync().slice() };
  });
}

describe('Conv2D gradients on wasm (dW by per-tap matMul or a batch-as-channels conv, dX by rotated-filter conv)', () => {
  it.each(CASES)('$name equals the cpu backend\'s stock gradients', async (c) => {
    await useBackend('cpu');
    const ref = grads(c, 11);
    await useBackend('wasm');
    const ours = grads(c, 11);
    expect(relL2(ours.dx, ref.dx)).toBeLessThan(1e-5);
    expect(relL2(ours.df, ref.df)).toBeLessThan(1e-5);
  });

  it('the gradient functions keep no tensors', async () => {
    await useBackend('wasm');
    const x = tf.randomNormal([1, 6, 6, 2]) as tf.Tensor4D;
    const f = tf.randomNormal([3, 3, 2, 3]) as tf.Tensor4D;
    const dy = tf.randomNormal([1, 6, 6, 3]) as tf.Tensor4D;
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) {
      const pad = { top: 1, bottom: 1, left: 1, right: 1 };
      tf.dispose([conv2dInputGradient(x.shape, f, dy, [1, 1], pad), conv2dFilterGradient(x, f.shape, dy, [1, 1], pad)]);
    }
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([x, f, dy]);
  });
});

describe('MatMul gradients on wasm (explicit transposes)', () => {
  it.each([[false, false], [false, true], [true, false], [true, true]])('transposeA=%s transposeB=%s equal the cpu backend', async (ta, tb) => {
    const run = () =>
      tf.tidy(() => {
        const a = tf.randomNormal(ta ? [5, 3] : [3, 5], 0, 1, 'float32', 1) as tf.Tensor2D;
        const b = tf.randomNormal(tb ? [4, 5] : [5, 4], 0, 1, 'float32', 2) as tf.Tensor2D;
        const w = tf.randomNormal([3, 4], 0, 1, 'float32', 3);
        const [da, db] = tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.mul(tf.matMul(x as tf.Tensor2D, y as tf.Tensor2D, ta, tb), w)))([a, b]);
        return [da.dataSync().slice(), db.dataSync().slice()];
      });
    await useBackend('cpu');
    const ref = run();
    await useBackend('wasm');
    const ours = run();
    expect(relL2(ours[0], ref[0])).toBeLessThan(1e-5);
    expect(relL2(ours[1], ref[1])).toBeLessThan(1e-5);
  });
});
