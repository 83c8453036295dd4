import * as tf from '@tensorflow/tfjs-core';
import { NnError, useBackend, withParameterPlacement, type HostTensor } from '@codiff/nn';
import { UNet2DConditionModel, unetConfigFromDiffusers } from '@codiff/sd-unet';
import { beforeAll, describe, expect, it } from 'vitest';
import { LoraModel } from '../src/index.js';
import { expectClose, goldenJson, nhwcTensor, readAll } from '../../../test-support/tfjs.js';

// Host-placed weights are how full-size SD fits the 4 GiB wasm heap; LoRA training must still work on top.
describe('host-placed base weights', () => {
  let weights: Map<string, HostTensor>;
  let cases: Map<string, HostTensor>;
  beforeAll(async () => {
    await useBackend('wasm');
    weights = await readAll('unet-tiny', 'weights.safetensors');
    cases = await readAll('unet-tiny', 'cases.safetensors');
  });

  it('give the same output, keep the tensor count flat, and pass gradients to LoRA', async () => {
    const config = unetConfigFromDiffusers(goldenJson('unet-tiny', 'config.json'));
    const before = tf.memory().numTensors;
    const unet = withParameterPlacement('host', () => new UNet2DConditionModel(config));
    expect(tf.memory().numTensors).toBe(before); // nothing was allocated on the device
    unet.loadStateDict(weights);
    expect(() => unet.convIn.weight.variable).toThrow(NnError);
    const sample = nhwcTensor(cases.get('caseB.sample')!);
    const e = cases.get('caseB.encoder_hidden_states')!;
    const ehs = tf.tensor3d(e.data, e.shape as [number, number, number]);
    const start = tf.memory().numTensors;
    const out = unet.forward(sample, 500, ehs);
    await expectClose(out, cases.get('caseB.out')!, 'host placement');
    out.dispose();
    expect(tf.memory().numTensors).toBe(start);

    const lora = new LoraModel(unet);
    lora.addAdapter('train', { r: 2, alpha: 2, targetModules: ['to_q', 'to_v'] });
    const trainable = lora.adapterParameters('train').map(([, p]) => p.variable);
    const { value, grads } = tf.variableGrads(() => tf.mean(tf.square(unet.forward(sample, 500, ehs))) as tf.Scalar, trainable);
    // B starts at zero, so A's gradient is zero and B's is not (as in peft).
    const nonzero = Object.entries(grads).filter(([, g]) => tf.any(tf.notEqual(g, 0)).dataSync()[0]);
    expect(nonzero.length).toBe(trainable.length / 2);
    tf.dispose([value, ...Object.values(grads), sample, ehs]);
    lora.dispose();
    unet.dispose();
  });
});
