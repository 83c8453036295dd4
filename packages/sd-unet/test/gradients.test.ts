import * as tf from '@tensorflow/tfjs-core';
import { useBackend, type HostTensor } from '@codiff/nn';
import { beforeAll, describe, expect, it } from 'vitest';
import { UNet2DConditionModel, unetConfigFromDiffusers } from '../src/index.js';
import { goldenJson, nhwcTensor, readAll } from '../../../test-support/tfjs.js';

let weights: Map<string, HostTensor>;
let cases: Map<string, HostTensor>;
beforeAll(async () => {
  weights = await readAll('unet-tiny', 'weights.safetensors');
  cases = await readAll('unet-tiny', 'cases.safetensors');
});

/** Parameter gradients of Σ(out ⊙ P) for a fixed random projection P, on the current backend. */
function parameterGradients(unet: UNet2DConditionModel): Map<string, Float32Array> {
  const sample = nhwcTensor(cases.get('caseB.sample')!);
  const e = cases.get('caseB.encoder_hidden_states')!;
  const ehs = tf.tensor3d(e.data, e.shape as [number, number, number]);
  const projection = tf.randomNormal([1, 16, 24, 4], 0, 1, 'float32', 5);
  const named = [...unet.namedParameters()];
  const { grads, value } = tf.variableGrads(
    () => tf.sum(tf.mul(unet.forward(sample, 500, ehs), projection)) as tf.Scalar,
    named.map(([, p]) => p.variable),
  );
  const byName = new Map(named.map(([k, p]) => [k, grads[p.variable.name].dataSync() as Float32Array]));
  tf.dispose([sample, ehs, projection, value, ...Object.values(grads)]);
  return byName;
}

describe('UNet parameter gradients', () => {
  it('on wasm equal the cpu backend (relative L2 ≤ 1e-4 for every one of the 684 tensors)', async () => {
    const config = unetConfigFromDiffusers(goldenJson('unet-tiny', 'config.json'));
    const results: Map<string, Float32Array>[] = [];
    for (const backend of ['cpu', 'wasm'] as const) {
      await useBackend(backend);
      const unet = new UNet2DConditionModel(config);
      unet.loadStateDict(weights);
      results.push(parameterGradients(unet));
      unet.dispose();
    }
    const [cpu, wasm] = results;
    expect(cpu.size).toBe(684);
    const worst = { key: '', err: 0 };
    for (const [key, ref] of cpu) {
      const got = wasm.get(key)!;
      let num = 0, den = 0;
      for (let i = 0; i < ref.length; i++) {
        num += (got[i] - ref[i]) ** 2;
        den += ref[i] ** 2;
      }
      expect(den, `${key} has a zero gradient`).toBeGreaterThan(0);
      const err = Math.sqrt(num / den);
      if (err > worst.err) Object.assign(worst, { key, err });
    }
    expect(worst.err, `worst: ${worst.key}`).toBeLessThanOrEqual(1e-4);
  });

  it('repeated forward/backward on wasm keeps the tensor count flat', async () => {
    await useBackend('wasm');
    const unet = new UNet2DConditionModel(unetConfigFromDiffusers(goldenJson('unet-tiny', 'config.json')));
    unet.loadStateDict(weights);
    parameterGradients(unet);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) parameterGradients(unet);
    expect(tf.memory().numTensors).toBe(before);
    unet.dispose();
  });
});
