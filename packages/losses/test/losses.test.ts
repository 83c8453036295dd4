import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { useBackend, writeSafetensors, type HostTensor } from '@codiff/nn';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { blockEdgeMse, discriminatorLoss, edgeAwareDists, generatorLoss, sobelMagnitude, type Dists } from '../src/index.js';
import { loadDists, loadLpips, loadVgg16 } from '../src/node.js';
import { golden, readAll } from '../../../test-support/tfjs.js';

const vggPath = golden('dists-lpips', 'vgg16.safetensors');
const distsPath = golden('dists-lpips', 'dists_weights.safetensors');

beforeAll(() => useBackend('wasm'));

describe('block-edge MSE', () => {
  /** The definition, by loops: squared error differences over neighbour pairs that straddle a block edge. */
  function reference(r: Float32Array, d: Float32Array, [b, h, w, c]: number[], shifts: [number, number][]) {
    let sum = 0, n = 0;
    const e = (i: number, y: number, x: number, k: number) => d[((i * h + y) * w + x) * c + k] - r[((i * h + y) * w + x) * c + k];
    for (let i = 0; i < b; i++) {
      for (let y = 0; y < h; y++) {
        for (let x = 0; x < w; x++) {
          for (let k = 0; k < c; k++) {
            if (y > 0 && (y + shifts[i][0]) % 8 === 0) (sum += (e(i, y, x, k) - e(i, y - 1, x, k)) ** 2), n++;
            if (x > 0 && (x + shifts[i][1]) % 8 === 0) (sum += (e(i, y, x, k) - e(i, y, x - 1, k)) ** 2), n++;
          }
        }
      }
    }
    return sum / n;
  }

  it('equals its definition with a shift per image, and its gradient is finite differences', async () => {
    const shape: [number, number, number, number] = [3, 19, 13, 3];
    const shifts: [number, number][] = [[0, 0], [3, 7], [5, 1]];
    const r = tf.randomUniform(shape, 0, 1, 'float32', 1) as tf.Tensor4D;
    const d = tf.randomUniform(shape, 0, 1, 'float32', 2) as tf.Tensor4D;
    const [rv, dv] = [await r.data() as Float32Array, await d.data() as Float32Array];
    const loss = blockEdgeMse(r, d, shifts);
    expect((await loss.data())[0]).toBeCloseTo(reference(rv, dv, shape, shifts), 5);
    const grad = tf.grad((x) => blockEdgeMse(r, x as tf.Tensor4D, shifts))(d);
    const g = await grad.data();
    for (const at of [0, 7 * 3, (19 * 13 + 8 * 13 + 4) * 3 + 1, 2 * 19 * 13 * 3 + (6 * 13) * 3 + 2]) {
      const step = 1e-3, up = Float32Array.from(dv), down = Float32Array.from(dv);
      up[at] += step;
      down[at] -= step;
      const numeric = (reference(rv, up, shape, shifts) - reference(rv, down, shape, shifts)) / (2 * step);
      expect(g[at]).toBeCloseTo(numeric, 4);
    }
    tf.dispose([r, d, loss, grad]);
  });

  it('is zero for an error that is smooth across the grid, and sees a blocky error only on its own grid', async () => {
    const [h, w] = [16, 16];
    // An error constant within each 8×8 block of the aligned grid: every step sits on a block edge.
    const blocky = Float32Array.from({ length: h * w * 3 }, (_, i) => {
      const y = Math.floor(i / (w * 3)), x = Math.floor(i / 3) % w;
      return 0.1 * ((y >> 3) + 2 * (x >> 3));
    });
    const zero = tf.zeros([1, h, w, 3]) as tf.Tensor4D;
    const smooth = tf.fill([1, h, w, 3], 0.3) as tf.Tensor4D;
    const steps = tf.tensor4d(blocky, [1, h, w, 3]);
    const value = async (t: tf.Tensor4D, shift: [number, number]) => {
      const l = blockEdgeMse(zero, t, [shift]);
      const v = (await l.data())[0];
      l.dispose();
      return v;
    };
    expect(await value(smooth, [0, 0])).toBe(0);
    // Rows: a step of 0.1 on the one edge at y = 8; columns: 0.2 at x = 8; 16·3 pairs each.
    expect(await value(steps, [0, 0])).toBeCloseTo((0.1 ** 2 + 0.2 ** 2) / 2, 6);
    expect(await value(steps, [4, 4])).toBe(0);
    expect(() => blockEdgeMse(zero, steps, [])).toThrow('blockEdgeMse: 0 grid shifts for a batch of 1');
    tf.dispose([zero, smooth, steps]);
  });
});

describe('Sobel edges', () => {
  it('give 4·step on a vertical step edge, √ε in flat regions, and average the colour channels', async () => {
    // Left half 0, right half 0.5 in R only → grey step of 0.5/3.
    const data = new Float32Array(6 * 6 * 3);
    for (let y = 0; y < 6; y++) for (let x = 3; x < 6; x++) data[(y * 6 + x) * 3] = 0.5;
    const edges = sobelMagnitude(tf.tensor4d(data, [1, 6, 6, 3]));
    expect(edges.shape).toEqual([1, 6, 6, 1]);
    const e = await edges.data();
    const step = 0.5 / 3;
    // Rows 1..4 are away from the zero padding in y: gx = (1 + 2 + 1)·step at the two columns beside the edge.
    for (let y = 1; y < 5; y++) {
      expect(e[y * 6 + 2]).toBeCloseTo(Math.sqrt((4 * step) ** 2 + 1e-6), 6);
      expect(e[y * 6 + 3]).toBeCloseTo(Math.sqrt((4 * step) ** 2 + 1e-6), 6);
      expect(e[y * 6 + 1]).toBeCloseTo(Math.sqrt(1e-6), 6);
    }
    edges.dispose();
  });
});

describe('edge-aware DISTS', () => {
  let dists: Dists;
  beforeAll(async () => {
    dists = await loadDists(vggPath, distsPath);
  });
  afterAll(() => {
    dists.dispose();
    for (const p of dists.vgg.parameters()) p.dispose();
  });

  it('is DISTS of the Sobel maps (repeated to RGB) plus DISTS of the images, ~0 for identical images', async () => {
    const a = tf.randomUniform([1, 32, 32, 3], 0, 1, 'float32', 1) as tf.Tensor4D;
    const b = tf.clipByValue(tf.add(a, tf.randomNormal([1, 32, 32, 3], 0, 0.1, 'float32', 2)), 0, 1) as tf.Tensor4D;
    const combined = edgeAwareDists(dists, a, b);
    const edges = (x: tf.Tensor4D) => tf.tile(sobelMagnitude(x), [1, 1, 1, 3]) as tf.Tensor4D;
    const parts = tf.add(dists.score(edges(a), edges(b)), dists.score(a, b));
    expect((await combined.data())[0]).toBeCloseTo((await parts.data())[0], 6);
    expect((await combined.data())[0]).toBeGreaterThan(0.01);
    const same = edgeAwareDists(dists, a, a);
    expect(Math.abs((await same.data())[0])).toBeLessThan(1e-5); // the golden README's DISTS tolerance
    tf.dispose([a, b, combined, parts, same]);
  });

  it('has a finite gradient (flat regions included) and keeps the tensor count flat', async () => {
    const flat = tf.fill([1, 32, 32, 3], 0.5) as tf.Tensor4D;
    const other = tf.randomUniform([1, 32, 32, 3], 0, 1, 'float32', 3) as tf.Tensor4D;
    const step = () => tf.grad((x: tf.Tensor) => tf.sum(edgeAwareDists(dists, other, x as tf.Tensor4D)))(flat);
    step().dispose();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) {
      const g = step();
      const values = await g.data();
      expect(values.every(Number.isFinite)).toBe(true);
      expect(values.some((v) => v !== 0)).toBe(true);
      g.dispose();
    }
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([flat, other]);
  });
});

describe('LPIPS in a training loop', () => {
  it('keeps the tensor count flat over repeated forward/backward', async () => {
    const lpips = await loadLpips(vggPath, golden('dists-lpips', 'lpips_vgg_v0.1.safetensors'));
    const a = tf.randomUniform([2, 32, 32, 3], 0, 1, 'float32', 4) as tf.Tensor4D;
    const b = tf.randomUniform([2, 32, 32, 3], 0, 1, 'float32', 5) as tf.Tensor4D;
    const step = () => tf.grad((x: tf.Tensor) => tf.mean(lpips.score(a, x as tf.Tensor4D)))(b);
    step().dispose();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) {
      const g = step();
      expect((await g.data()).every(Number.isFinite)).toBe(true);
      g.dispose();
      const { score, perLayer } = lpips.forward(a, b);
      tf.dispose([score, ...perLayer]);
    }
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([a, b]);
    lpips.dispose();
    for (const p of lpips.trunk.parameters()) p.dispose();
  });
});

describe('GAN losses', () => {
  const softplus = (x: number) => Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(x)));

  it('discriminator BCE (real → 1, fake → 0, one mean over both) and generator softplus(−logits) equal their closed forms', async () => {
    const real = [2.5, -1, 0, 30];
    const fake = [-3, 0.5, 1, -40];
    const d = discriminatorLoss(tf.tensor1d(real), tf.tensor1d(fake));
    const g = generatorLoss(tf.tensor1d(fake));
    const mean = (v: number[]) => v.reduce((a, x) => a + x, 0) / v.length;
    expect((await d.data())[0]).toBeCloseTo(mean([...real.map((x) => softplus(-x)), ...fake.map(softplus)]), 6);
    expect((await g.data())[0]).toBeCloseTo(mean(fake.map((x) => softplus(-x))), 6);
    tf.dispose([d, g]);
  });

  it('stay finite with gradients for extreme logits', async () => {
    const logits = tf.tensor1d([-1000, 1000, 88, -88]);
    const [dReal, dFake] = tf.grads((r: tf.Tensor, f: tf.Tensor) => discriminatorLoss(r, f))([logits, logits]);
    const dG = tf.grad((f: tf.Tensor) => generatorLoss(f))(logits);
    for (const t of [dReal, dFake, dG]) expect((await t.data()).every(Number.isFinite)).toBe(true);
    // d/dx mean softplus(−x) = −σ(−x)/n: −1/4 at x = −1000, 0 at x = 1000.
    expect(Array.from(await dG.data())[0]).toBeCloseTo(-0.25, 6);
    expect(Array.from(await dG.data())[1]).toBeCloseTo(0, 6);
    tf.dispose([logits, dReal, dFake, dG]);
  });
});

describe('weight files', () => {
  let vgg: Map<string, HostTensor>;
  const dir = mkdtempSync(join(tmpdir(), 'codiff-losses-'));
  beforeAll(async () => {
    vgg = await readAll('dists-lpips', 'vgg16.safetensors');
  });
  const write = (name: string, tensors: Map<string, HostTensor>) => {
    const path = join(dir, name);
    writeFileSync(path, writeSafetensors(Object.fromEntries(tensors)));
    return path;
  };

  it('name the file and the missing key', async () => {
    const partial = new Map(vgg);
    partial.delete('features.28.weight');
    const path = write('partial.safetensors', partial);
    await expect(loadVgg16(path)).rejects.toThrow(new RegExp(`${path}.*missing.*features\\.28\\.weight`, 's'));
  });

  it('name the file and the key of a wrong shape', async () => {
    const wrong = new Map(vgg);
    wrong.set('features.0.weight', { shape: [64, 1, 3, 3], data: new Float32Array(64 * 9) });
    const path = write('wrong.safetensors', wrong);
    await expect(loadVgg16(path)).rejects.toThrow(new RegExp(`${path}.*features\\.0\\.weight`, 's'));
  });

  it('reject a heads file in place of the DISTS weights, and a missing file', async () => {
    const trunk = await loadVgg16(vggPath);
    const heads = golden('dists-lpips', 'lpips_vgg_v0.1.safetensors');
    await expect(loadDists(trunk, heads)).rejects.toThrow(new RegExp(`${heads}.*missing keys: alpha, beta; unexpected keys: lin0.model.1.weight`));
    await expect(loadLpips(trunk, join(dir, 'nope.safetensors'))).rejects.toThrow(/nope\.safetensors: no such file/);
    for (const p of trunk.parameters()) p.dispose();
  });

  it('reject constants that differ from the model (e.g. another normalisation)', async () => {
    const weights = await readAll('dists-lpips', 'dists_weights.safetensors');
    weights.set('mean', { shape: [1, 3, 1, 1], data: new Float32Array([0.5, 0.5, 0.5]) });
    const path = write('dists-mean.safetensors', weights);
    const trunk = await loadVgg16(vggPath);
    await expect(loadDists(trunk, path)).rejects.toThrow(/'mean' holds \[0.5, 0.5, 0.5\]/);
    for (const p of trunk.parameters()) p.dispose();
  });
});
