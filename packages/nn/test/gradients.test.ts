import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { BatchNorm2d, Conv2d, conv2dFilterGradient, conv2dInputGradient, GroupNorm, scaledDotProductAttention, useBackend } from '../src/index.js';
import { PER_HEAD_MIN_SCORES } from '../src/attention.js';
import { conv2dWithBias } from '../src/gradients.js';
import { channelSum, upsampleNearest2x } from '../src/ops.js';

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

const random = (shape: number[], seed: number) => tf.randomNormal(shape, 0, 1, 'float32', seed);
/** Each tensor's values, read on the current backend. */
const values = (ts: tf.Tensor[]) => ts.map((t) => Float32Array.from(t.dataSync()));

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
  // kernel = stride, unpadded: dX by one matMul; an odd size leaves a row and a column no output reads.
  { name: '2×2 stride 2 valid, odd size', x: [2, 9, 7, 3], k: 2, cout: 4, stride: 2, pad: 'valid' },
  // Other stride-2 convs: dX by output phases (even and odd kernels, rows past the last window, 1×1 taps for one parity).
  { name: '3×3 stride 2 same (padding below and right only)', x: [2, 8, 6, 3], k: 3, cout: 4, stride: 2, pad: 'same' },
  { name: '4×4 stride 2 pad 1', x: [1, 9, 10, 2], k: 4, cout: 3, stride: 2, pad: 1 },
  { name: '1×1 stride 2, odd size', x: [1, 7, 5, 3], k: 1, cout: 2, stride: 2, pad: 'valid' },
  { name: '5×5 stride 2 pad 2', x: [1, 11, 8, 2], k: 5, cout: 3, stride: 2, pad: 2 },
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

describe('bias and BatchNorm gradients (channel sums without wasm\'s slow Sum)', () => {
  const expectClose = (ours: Float32Array[], ref: Float32Array[], tolerance: number) => ours.forEach((o, i) => expect(relL2(o, ref[i]), `output ${i}`).toBeLessThan(tolerance));

  it('channelSum equals tf.sum over the leading axes, row counts divisible by 32 or not', async () => {
    for (const shape of [[4, 8, 8, 5], [3, 7, 5, 6], [40, 3]]) {
      const run = () => tf.tidy(() => values([channelSum(random(shape, 1)), tf.sum(random(shape, 1), [...Array(shape.length - 1).keys()])]));
      await useBackend('wasm');
      const [ours, stock] = run();
      expect(relL2(ours, stock)).toBeLessThan(1e-6);
    }
  });

  it('conv2dWithBias (one fused convolution on wasm) has the gradients of conv2d + add on cpu', async () => {
    const run = () =>
      tf.tidy(() => {
        const [x, f, b] = [random([8, 9, 7, 3], 1) as tf.Tensor4D, random([3, 3, 3, 4], 2) as tf.Tensor4D, random([4], 3) as tf.Tensor1D];
        const pad: [[number, number], [number, number], [number, number], [number, number]] = [[0, 0], [1, 1], [1, 1], [0, 0]];
        const loss = (xi: tf.Tensor, fi: tf.Tensor, bi: tf.Tensor) => {
          const y = conv2dWithBias(xi as tf.Tensor4D, fi as tf.Tensor4D, bi as tf.Tensor1D, 2, pad);
          return tf.sum(tf.mul(y, random(y.shape, 4)));
        };
        const { value, grads } = tf.valueAndGrads(loss)([x, f, b]);
        return values([value, ...grads]);
      });
    await useBackend('cpu');
    const ref = run();
    await useBackend('wasm');
    expectClose(run(), ref, 1e-5);
  });

  it('a bias added with tf.add gets its gradient as a channel sum on wasm; other broadcasts keep the stock gradient', async () => {
    const run = () =>
      tf.tidy(() => {
        const [x, b, s] = [random([4, 6, 8, 5], 1), random([5], 2), random([1, 6, 1, 5], 3)];
        const { grads } = tf.valueAndGrads((xi: tf.Tensor, bi: tf.Tensor, si: tf.Tensor) => tf.sum(tf.mul(tf.add(tf.add(bi, xi), si), random(x.shape, 4))))([x, b, s]);
        return values(grads);
      });
    await useBackend('cpu');
    const ref = run();
    await useBackend('wasm');
    expectClose(run(), ref, 1e-6);
  });

  it('BatchNorm2d in train mode: output, gradients and running statistics equal differentiating the moments op by op', async () => {
    const [shape, eps, momentum] = [[8, 6, 10, 4], 1e-4, 0.9];
    const run = (fused: boolean) => {
      const bn = new BatchNorm2d(4, { eps, momentum }).train();
      bn.weight.variable.assign(random([4], 2));
      bn.bias.variable.assign(random([4], 3));
      const out = tf.tidy(() => {
        const x = tf.add(tf.mul(random(shape, 1), 3), 0.5);
        const target = random(shape, 4);
        const reference = (xi: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => {
          const { mean, variance } = tf.moments(xi, [0, 1, 2]);
          return tf.add(tf.mul(tf.div(tf.sub(xi, mean), tf.sqrt(tf.add(variance, eps))), g), b);
        };
        const forward = fused ? (xi: tf.Tensor) => bn.forward(xi as tf.Tensor4D) : (xi: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => reference(xi, g, b);
        const { value, grads } = tf.valueAndGrads((xi: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(forward(xi, g, b), target)))([x, bn.weight.value, bn.bias.value]);
        return values([value, ...grads, bn.runningMean.value, bn.runningVar.value]);
      });
      bn.dispose();
      return out;
    };
    await useBackend('cpu');
    const ref = run(false);
    const n = 8 * 6 * 10;
    for (const backend of ['cpu', 'wasm'] as const) {
      await useBackend(backend);
      const ours = run(true);
      expectClose(ours.slice(0, 4), ref.slice(0, 4), 1e-5);
      // Running statistics: torch's momentum 0.9 blends 90 % of the batch's mean and unbiased variance into 0 and 1.
      const { mean, variance } = tf.tidy(() => {
        const m = tf.moments(tf.add(tf.mul(random(shape, 1), 3), 0.5), [0, 1, 2]);
        return { mean: m.mean.dataSync().slice(), variance: m.variance.dataSync().slice() };
      });
      expect(relL2(ours[4], mean.map((m) => 0.9 * m))).toBeLessThan(1e-5);
      expect(relL2(ours[5], variance.map((v) => 0.1 + 0.9 * v * (n / (n - 1))))).toBeLessThan(1e-5);
    }
  });
});

describe('scaledDotProductAttention (per head for large scores, batched for small)', () => {
  // 5×7 scores take the batched path, 70×60 the per-head one.
  it.each([[1, 2, 5, 7], [3, 2, 5, 7], [2, 1, 5, 7], [1, 2, 70, 60], [3, 2, 70, 60], [2, 1, 70, 60]])('batch %i, %i heads, %i×%i scores: value and gradients equal batched attention on cpu', async (batch, heads, queries, keys) => {
    expect(queries * keys >= PER_HEAD_MIN_SCORES).toBe(queries > 10);
    const run = (ours: boolean) =>
      tf.tidy(() => {
        const [q, k, v] = [[batch, queries, 6], [batch, keys, 6], [batch, keys, 6]].map((shape, i) => tf.randomNormal(shape, 0, 1, 'float32', i + 1));
        const w = tf.randomNormal([batch, queries, 6], 0, 1, 'float32', 9);
        const reference = (qi: tf.Tensor, ki: tf.Tensor, vi: tf.Tensor) => {
          const split = (t: tf.Tensor) => tf.transpose(tf.reshape(t, [batch, t.shape[1]!, heads, 6 / heads]), [0, 2, 1, 3]) as tf.Tensor4D;
          const scores = tf.softmax(tf.mul(tf.matMul(split(qi), split(ki), false, true), 1 / Math.sqrt(6 / heads)));
          return tf.reshape(tf.transpose(tf.matMul(scores, split(vi)), [0, 2, 1, 3]), [batch, queries, 6]);
        };
        const f = (qi: tf.Tensor, ki: tf.Tensor, vi: tf.Tensor) =>
          tf.sum(tf.mul(ours ? scaledDotProductAttention(qi as tf.Tensor3D, ki as tf.Tensor3D, vi as tf.Tensor3D, heads) : reference(qi, ki, vi), w));
        const { value, grads } = tf.valueAndGrads(f)([q, k, v]);
        return [value, ...grads].map((t) => Float32Array.from(t.dataSync()));
      });
    await useBackend('cpu');
    const ref = run(false);
    for (const backend of ['cpu', 'wasm'] as const) {
      await useBackend(backend);
      run(true).forEach((o, i) => expect(relL2(o, ref[i]), `${backend} output ${i}`).toBeLessThan(1e-5));
    }
  });
});

describe('normalisation layers on their fast paths', () => {

  it('GroupNorm (means as row sums) has the output and gradients of tf.moments op by op, pixel counts divisible by 32 or not', async () => {
    for (const shape of [[2, 8, 12, 16], [3, 5, 7, 8]]) {
      const [b, h, w, c] = shape;
      const run = (fast: boolean) => {
        const gn = new GroupNorm(4, c);
        const out = tf.tidy(() => {
          gn.weight.variable.assign(random([c], 2));
          gn.bias.variable.assign(random([c], 3));
          // An offset mean, so that a one-pass variance would show.
          const x = tf.add(random(shape, 1), 50);
          const reference = (xi: tf.Tensor, g: tf.Tensor, bi: tf.Tensor) => {
            const grouped = tf.reshape(xi, [b, h * w, 4, c / 4]);
            const { mean, variance } = tf.moments(grouped, [1, 3], true);
            return tf.add(tf.mul(tf.reshape(tf.div(tf.sub(grouped, mean), tf.sqrt(tf.add(variance, gn.eps))), shape), g), bi);
          };
          const forward = fast ? (xi: tf.Tensor) => gn.forward(xi as tf.Tensor4D) : reference;
          const { value, grads } = tf.valueAndGrads((xi: tf.Tensor, g: tf.Tensor, bi: tf.Tensor) => tf.sum(tf.mul(forward(xi, g, bi), random(shape, 4))))([x, gn.weight.value, gn.bias.value]);
          return values([value, ...grads, forward(x, gn.weight.value, gn.bias.value)]);
        });
        gn.dispose();
        return out;
      };
      await useBackend('cpu');
      const ref = run(false);
      for (const backend of ['cpu', 'wasm'] as const) {
        await useBackend(backend);
        run(true).forEach((o, i) => expect(relL2(o, ref[i]), `${shape} ${backend} output ${i}`).toBeLessThan(1e-5));
      }
    }
  });

  it('Conv2d.forwardWithBatchNorm: in eval mode one convolution with the output and gradients of the two layers; in train mode the two layers', async () => {
    const shape = [4, 9, 7, 3];
    const run = (folded: boolean, training: boolean) => {
      const conv = new Conv2d(3, 5, 3, { padding: 1 });
      const bn = new BatchNorm2d(5, { eps: 1e-4 }).train(training);
      for (const [i, p] of [conv.weight, conv.bias!, bn.weight, bn.bias, bn.runningMean].entries()) p.variable.assign(random(p.shape, 10 + i));
      bn.runningVar.variable.assign(tf.add(tf.abs(random([5], 20)), 0.5));
      const out = tf.tidy(() => {
        const forward = (xi: tf.Tensor) => (folded ? conv.forwardWithBatchNorm(xi as tf.Tensor4D, bn) : bn.forward(conv.forward(xi as tf.Tensor4D)));
        const x = random(shape, 1);
        const { value, grads } = tf.valueAndGrads((xi: tf.Tensor, w: tf.Tensor) => tf.sum(tf.mul(forward(xi), random([4, 9, 7, 5], 2))))([x, conv.weight.value]);
        return values([value, ...grads, bn.runningMean.value]);
      });
      conv.dispose();
      bn.dispose();
      return out;
    };
    for (const backend of ['cpu', 'wasm'] as const) {
      await useBackend(backend);
      for (const training of [false, true]) {
        const ref = run(false, training);
        run(true, training).forEach((o, i) => expect(relL2(o, ref[i]), `${backend} training=${training} output ${i}`).toBeLessThan(1e-5));
      }
    }
  });

});

describe('nearest ×2 upsampling', () => {
  it('upsampleNearest2x equals tf.image.resizeNearestNeighbor ×2, value and gradient (the latter where TF.js gets it right: wasm, or cpu at batch 1)', async () => {
    const run = (shape: number[], up: (x: tf.Tensor4D) => tf.Tensor) =>
      tf.tidy(() => {
        const weights = random([shape[0], 2 * shape[1], 2 * shape[2], shape[3]], 2);
        const { value, grad } = tf.valueAndGrad((x: tf.Tensor) => tf.sum(tf.mul(up(x as tf.Tensor4D), weights)))(random(shape, 1));
        return values([up(random(shape, 1) as tf.Tensor4D), value, grad]);
      });
    const resize = (x: tf.Tensor4D) => tf.image.resizeNearestNeighbor(x, [2 * x.shape[1], 2 * x.shape[2]]);
    for (const [backend, shape] of [['cpu', [1, 5, 7, 3]], ['wasm', [3, 5, 7, 3]], ['wasm', [2, 1, 1, 4]]] as const) {
      await useBackend(backend);
      const ref = run([...shape], resize);
      run([...shape], upsampleNearest2x).forEach((o, i) => expect(relL2(o, ref[i]), `${backend} ${shape} output ${i}`).toBeLessThan(1e-6));
    }
  });

  it('Conv2d.forwardUpsampled: the output and gradients of a nearest ×2 upsample followed by the convolution, odd sizes and no bias included', async () => {
    const run = (fast: boolean, [b, h, w, cin]: number[], bias: boolean) => {
      const conv = new Conv2d(cin, 5, 3, { padding: 1, bias });
      for (const [i, p] of [conv.weight, ...(conv.bias ? [conv.bias] : [])].entries()) p.variable.assign(random(p.shape, 10 + i));
      const out = tf.tidy(() => {
        const forward = (x: tf.Tensor) => (fast ? conv.forwardUpsampled(x as tf.Tensor4D) : conv.forward(upsampleNearest2x(x as tf.Tensor4D)));
        const weights = random([b, 2 * h, 2 * w, 5], 2);
        const params = [conv.weight.value, ...(conv.bias ? [conv.bias.value] : [])];
        const { value, grads } = tf.valueAndGrads((x: tf.Tensor) => tf.sum(tf.mul(forward(x), weights)))([random([b, h, w, cin], 1), ...params]);
        return values([forward(random([b, h, w, cin], 1)), value, ...grads]);
      });
      conv.dispose();
      return out;
    };
    for (const backend of ['cpu', 'wasm'] as const) {
      await useBackend(backend);
      for (const [shape, bias] of [[[2, 5, 7, 3], true], [[1, 4, 6, 4], false], [[1, 1, 1, 2], true]] as const) {
        const ref = run(false, [...shape], bias);
        const fast = run(true, [...shape], bias);
        expect(fast).toHaveLength(bias ? 5 : 4);
        fast.forEach((o, i) => expect(relL2(o, ref[i]), `${backend} ${shape} bias=${bias} output ${i}`).toBeLessThan(1e-5));
      }
    }
  });
});
