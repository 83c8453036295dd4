import * as tf from '@tensorflow/tfjs-core';
import { useBackend, type BackendName, type HostTensor } from '@codiff/nn';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sharedWeights } from '../../../test-support/golden.js';
import { expectClose, goldenJson, gradientAgreement, nhwcTensor, readAll, tensorAt } from '../../../test-support/tfjs.js';
import type { Lpips } from '../src/index.js';
import { loadLpipsSqueeze } from '../src/node.js';

const manifest = goldenJson('lpips-squeeze', 'manifest.json') as { cases: Record<string, { pairs: unknown[] }> };
const CASES = Object.keys(manifest.cases).filter((name) => name !== 'trunk');

let golden: Map<string, HostTensor>;
beforeAll(async () => {
  golden = await readAll('lpips-squeeze', 'cases.safetensors');
});

/** LPIPS takes [0, 1]; the golden inputs are in [-1, 1]. */
const toUnit = (x: tf.Tensor4D) => tf.div(tf.add(x, 1), 2) as tf.Tensor4D;

for (const backend of ['cpu', 'wasm'] as BackendName[]) {
  describe(`LPIPS-squeeze (real ImageNet SqueezeNet 1.1 + LPIPS v0.1 heads) on ${backend}`, () => {
    let lpips: Lpips;
    beforeAll(async () => {
      await useBackend(backend);
      lpips = await loadLpipsSqueeze(sharedWeights('squeezenet1_1/features.safetensors'), sharedWeights('lpips/squeeze.safetensors'));
    });
    afterAll(() => {
      lpips.dispose();
      for (const p of lpips.trunk.parameters()) p.dispose();
    });

    it('the seven trunk maps equal torchvision’s (ceil-mode pools, odd 33×45 input)', async () => {
      const scaled = nhwcTensor(tensorAt(golden, 'trunk.scaled'));
      const maps = lpips.trunk.lpipsStages(scaled);
      for (let k = 0; k < 7; k++) await expectClose(maps[k], tensorAt(golden, `trunk.relu${k + 1}`), `relu${k + 1}`);
      tf.dispose([scaled, ...maps]);
    });

    for (const set of CASES) {
      it(`${set}: scores, per-layer values and the input gradient equal lpips`, async () => {
        const [x0, x1] = [nhwcTensor(tensorAt(golden, `${set}.x0`)), nhwcTensor(tensorAt(golden, `${set}.x1`))];
        const { score, perLayer } = lpips.forward(toUnit(x0), toUnit(x1));
        const want = tensorAt(golden, `${set}.lpips`).data;
        const got = await score.data();
        want.forEach((v, i) => expect(Math.abs(got[i] - v), `score ${i}`).toBeLessThanOrEqual(1e-6 + 1e-4 * Math.abs(v)));
        const layers = tensorAt(golden, `${set}.lpips_per_layer`);
        for (let k = 0; k < 7; k++) {
          const values = await perLayer[k].data();
          for (let i = 0; i < values.length; i++) {
            const ref = layers.data[k * values.length + i];
            expect(Math.abs(values[i] - ref), `layer ${k} pair ${i}`).toBeLessThanOrEqual(1e-6 + 1e-4 * Math.abs(ref));
          }
        }
        const grad = tf.grad((x: tf.Tensor) => tf.sum(lpips.score(toUnit(x as tf.Tensor4D), toUnit(x1))))(x0);
        const { relL2, cosine } = await gradientAgreement(grad, tensorAt(golden, `${set}.grad_x0`));
        expect(relL2).toBeLessThanOrEqual(1e-2);
        expect(cosine).toBeGreaterThanOrEqual(0.999);
        tf.dispose([x0, x1, score, ...perLayer, grad]);
      });
    }

    it('keeps the tensor count flat over repeated scoring with gradients', () => {
      const x = tf.randomUniform([1, 40, 52, 3]) as tf.Tensor4D;
      const y = tf.randomUniform([1, 40, 52, 3]) as tf.Tensor4D;
      const step = () => tf.dispose(tf.grad((a: tf.Tensor) => tf.sum(lpips.score(a as tf.Tensor4D, y)))(x));
      step();
      const before = tf.memory().numTensors;
      for (let i = 0; i < 3; i++) step();
      expect(tf.memory().numTensors).toBe(before);
      tf.dispose([x, y]);
    });
  });
}
