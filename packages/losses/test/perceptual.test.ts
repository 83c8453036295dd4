import * as tf from '@tensorflow/tfjs-core';
import { useBackend, type BackendName, type HostTensor } from '@codiff/nn';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Dists, edgeAwareDists, Lpips, sobelMagnitude, Vgg16Features } from '../src/index.js';
import { loadDists, loadLpips, loadVgg16 } from '../src/node.js';
import { backendsUnderTest, expectClose, golden, gradientAgreement, nhwcTensor, readAll, tensorAt } from '../../../test-support/tfjs.js';

const dir = (file: string) => golden('dists-lpips', file);
const SETS = ['s64', 's96x128'] as const;

let cases: Map<string, HostTensor>;
let trunk: Map<string, HostTensor>;
let vgg: Vgg16Features;
let dists: Dists;
let lpips: Lpips;

beforeAll(async () => {
  cases = await readAll('dists-lpips', 'cases.safetensors');
  trunk = await readAll('dists-lpips', 'trunk.safetensors');
  await useBackend('cpu');
  vgg = await loadVgg16(dir('vgg16.safetensors'));
  dists = await loadDists(vgg, dir('dists_weights.safetensors'));
  lpips = await loadLpips(vgg, dir('lpips_vgg_v0.1.safetensors'));
});

afterAll(() => {
  dists.dispose();
  lpips.dispose();
  for (const p of vgg.parameters()) p.dispose();
});

/** Pairs `index` of a set as NHWC tensors (x0 = reference, x1 = distorted). */
function pair(set: string, index?: number): [tf.Tensor4D, tf.Tensor4D] {
  return [tensorAt(cases, `${set}.x0`), tensorAt(cases, `${set}.x1`)].map((t) => {
    const all = nhwcTensor(t);
    if (index === undefined) return all;
    const one = tf.slice(all, [index, 0, 0, 0], [1, -1, -1, -1]);
    all.dispose();
    return one;
  }) as [tf.Tensor4D, tf.Tensor4D];
}

type Score = (reference: tf.Tensor4D, distorted: tf.Tensor4D) => tf.Tensor1D;

/** Σ scores of the pairs and its gradient d(Σ scores)/d(x1), as the golden files define it. */
const scoreSumAndGradient = (score: Score, x0: tf.Tensor4D, x1: tf.Tensor4D) =>
  tf.valueAndGrad((x: tf.Tensor) => tf.sum(score(x0, x as tf.Tensor4D)))(x1);

describe('VGG16 trunks', () => {
  it('equal the reference feature maps (max-pool for LPIPS, L2-pool for DISTS)', async () => {
    await useBackend('cpu');
    const image = nhwcTensor(tensorAt(trunk, 'image'));
    const scaled = nhwcTensor(tensorAt(trunk, 'lpips.scaled_input'));
    const normalised = tf.div(tf.sub(image, [0.485, 0.456, 0.406]), [0.229, 0.224, 0.225]) as tf.Tensor4D;
    const names = ['relu1_2', 'relu2_2', 'relu3_3', 'relu4_3', 'relu5_3'];
    for (const [kind, input, pooling] of [['lpips', scaled, 'max'], ['dists', normalised, 'l2']] as const) {
      const features = vgg.stages(input, pooling);
      for (const [k, f] of features.entries()) await expectClose(f, tensorAt(trunk, `${kind}.${names[k]}`), `${kind}.${names[k]}`);
      tf.dispose(features);
    }
    tf.dispose([image, scaled, normalised]);
  });
});

describe('identical images', () => {
  it('score ~0 with a tiny gradient for DISTS and LPIPS', async () => {
    await useBackend('wasm');
    const [x0] = pair('s64', 3);
    for (const score of [(a, b) => dists.score(a, b), (a, b) => lpips.score(a, b)] as Score[]) {
      // One pair: the sum is its score.
      const { value, grad } = scoreSumAndGradient(score, x0, x0);
      expect(Math.abs((await value.data())[0])).toBeLessThan(1e-6);
      const g = await grad.data();
      expect(Math.max(...Array.from(g, Math.abs))).toBeLessThan(1e-6);
      tf.dispose([value, grad]);
    }
    x0.dispose();
  });
});

const BACKENDS = await backendsUnderTest();

/** The cpu backend needs 1–2 minutes for a set's scores and gradients. */
const SLOW_TEST_MS = 360_000;

interface Selection {
  readonly set: (typeof SETS)[number];
  /** One pair of the set, or all. */
  readonly index?: number;
  readonly gradients: boolean;
}

for (const backend of BACKENDS) {
  // wasm runs everything. The cpu backend (a reference, ~1 GFLOP/s) scores every pair but takes gradients on the 64²
  // set only; WebGPU on SwiftShader runs one pair.
  const selection: Selection[] =
    backend === 'wasm'
      ? SETS.map((set) => ({ set, gradients: true }))
      : backend === 'cpu'
        ? [{ set: 's64', gradients: true }, { set: 's96x128', gradients: false }]
        : [{ set: 's64', index: 0, gradients: true }];
  describe(`DISTS and LPIPS on ${backend}`, () => {
    beforeAll(() => useBackend(backend as BackendName));

    for (const { set, index, gradients } of selection) {
      const pick = (values: Float32Array) => (index === undefined ? Array.from(values) : [values[index]]);
      const refGrad = (key: string): HostTensor => {
        const t = tensorAt(cases, key);
        if (index === undefined) return t;
        const per = t.data.length / t.shape[0];
        return { shape: [1, ...t.shape.slice(1)], data: t.data.slice(index * per, (index + 1) * per) };
      };
      const expectGradient = async (score: Score, x0: tf.Tensor4D, x1: tf.Tensor4D, key: string) => {
        const { value, grad } = scoreSumAndGradient(score, x0, x1);
        const { relL2, cosine } = await gradientAgreement(grad, refGrad(key));
        expect(relL2, `${key} relative L2`).toBeLessThanOrEqual(1e-2);
        expect(cosine, `${key} cosine`).toBeGreaterThanOrEqual(0.999);
        tf.dispose([value, grad]);
      };
      const what = gradients ? 'scores and input gradients' : 'scores';

      it(`DISTS ${what} equal DISTS_pytorch on ${set}`, async () => {
        const [x0, x1] = pair(set, index);
        const scores = dists.score(x0, x1);
        const expected = pick(tensorAt(cases, `${set}.dists`).data);
        Array.from(await scores.data()).forEach((s, i) => expect(Math.abs(s - expected[i]), `pair ${i}: ${s} vs ${expected[i]}`).toBeLessThanOrEqual(1e-5));
        if (gradients) await expectGradient((a, b) => dists.score(a, b), x0, x1, `${set}.dists_grad_x1`);
        tf.dispose([x0, x1, scores]);
      }, SLOW_TEST_MS);

      it(`LPIPS ${what} (and per-layer values) equal lpips on ${set}`, async () => {
        const [x0, x1] = pair(set, index);
        const { score, perLayer } = lpips.forward(x0, x1);
        const expected = pick(tensorAt(cases, `${set}.lpips`).data);
        const got = Array.from(await score.data());
        got.forEach((s, i) => expect(Math.abs(s - expected[i]), `pair ${i}`).toBeLessThanOrEqual(1e-6 + 1e-4 * Math.abs(expected[i])));
        const layers = tensorAt(cases, `${set}.lpips_per_layer`);
        const batch = layers.shape[1];
        for (const [k, layer] of perLayer.entries()) {
          const want = pick(layers.data.slice(k * batch, (k + 1) * batch));
          Array.from(await layer.data()).forEach((v, i) => expect(Math.abs(v - want[i]), `layer ${k} pair ${i}`).toBeLessThanOrEqual(1e-6 + 1e-4 * Math.abs(want[i])));
        }
        if (gradients) await expectGradient((a, b) => lpips.score(a, b), x0, x1, `${set}.lpips_grad_x1`);
        tf.dispose([x0, x1, score, ...perLayer]);
      }, SLOW_TEST_MS);
    }
  });
}
