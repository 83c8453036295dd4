import * as tf from '@tensorflow/tfjs-core';
import { useBackend, type HostTensor } from '@codiff/nn';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { alphasCumprod, oneStepCoefficients, timestepFeatures, UNet2DConditionModel, unetConfigFromDiffusers } from '../src/index.js';
import { backendsUnderTest, tensorAt, expectClose, goldenJson, nhwcTensor, readAll } from '../../../test-support/tfjs.js';

let weights: Map<string, HostTensor>;
let cases: Map<string, HostTensor>;
let inter: Map<string, HostTensor>;

beforeAll(async () => {
  weights = await readAll('unet-tiny', 'weights.safetensors');
  cases = await readAll('unet-tiny', 'cases.safetensors');
  inter = await readAll('unet-tiny', 'intermediates.safetensors');
});

const get = tensorAt;
const tokens = (t: HostTensor) => tf.tensor3d(t.data, t.shape as [number, number, number]);

describe('DDPM scaled-linear schedule and timestep features', () => {
  beforeAll(async () => {
    await useBackend('cpu');
  });

  it('gives the one-step coefficients of CODiff (t = 499)', async () => {
    const { sqrtAlphaBar, sqrtOneMinusAlphaBar } = oneStepCoefficients(499);
    expect(sqrtAlphaBar).toBeCloseTo(0.526944, 5);
    expect(sqrtOneMinusAlphaBar).toBeCloseTo(0.8499, 5);
    expect(alphasCumprod()[0]).toBeCloseTo(1 - 0.00085, 7);
    expect(() => oneStepCoefficients(1000)).toThrow(RangeError);
  });

  it('timestep features equal diffusers time_proj', async () => {
    const t = get(inter, 'time_proj::in.arg0');
    const ref = get(inter, 'time_proj::out');
    // Float32 sin/cos of arguments up to ~999 rad differ by an ulp between libms (golden README: worst
    // intermediate, 8.6e-6): the standard tolerance applies.
    const ours = tf.tensor2d(timestepFeatures(Array.from(t.data), 32, true, 0), [2, 32]);
    await expectClose(ours, ref, 'time_proj');
    ours.dispose();
  });
});

const BACKENDS = await backendsUnderTest();

for (const backend of BACKENDS) {
  describe(`UNet2DConditionModel (unet-tiny) on ${backend}`, () => {
    let unet: UNet2DConditionModel;
    beforeAll(async () => {
      await useBackend(backend);
      unet = new UNet2DConditionModel(unetConfigFromDiffusers(goldenJson('unet-tiny', 'config.json')));
      expect(unet.loadStateDict(weights).loaded).toHaveLength(684);
    });
    afterAll(() => unet.dispose());

    it.each(['caseA', 'caseB'])('%s output', async (c) => {
      const sample = nhwcTensor(get(cases, `${c}.sample`));
      const ehs = tokens(get(cases, `${c}.encoder_hidden_states`));
      const out = unet.forward(sample, Array.from(get(cases, `${c}.timestep`).data), ehs);
      await expectClose(out, get(cases, `${c}.out`), `${c}.out`);
      tf.dispose([sample, ehs, out]);
    });

    it('caseA intermediates, each submodule on its recorded input', async () => {
      const ehs = tokens(get(cases, 'caseA.encoder_hidden_states'));
      const temb = tf.tensor2d(get(inter, 'time_embedding::out').data, [2, 128]);
      const ctx = { temb, context: ehs };
      const d0 = unet.downBlocks.items[0];
      const t0 = d0.attentions!.items[0];
      const block0 = t0.transformerBlocks.items[0];
      const p = 'down_blocks.0.attentions.0';
      const checks: [string, () => tf.Tensor][] = [
        ['time_embedding::out', () => unet.embedTimesteps(Array.from(get(inter, 'time_proj::in.arg0').data))],
        ['conv_in::out', () => unet.convIn.forward(nhwcTensor(get(inter, 'conv_in::in.arg0')))],
        [`${p}.proj_in::out`, () => (t0.projIn as { forward(x: tf.Tensor3D): tf.Tensor3D }).forward(tokens(get(inter, `${p}.proj_in::in.arg0`)))],
        [`${p}.transformer_blocks.0.norm1::out`, () => block0.norm1.forward(tokens(get(inter, `${p}.proj_in::out`)))],
        [`${p}.transformer_blocks.0.attn1::out`, () => block0.attn1.forward(tokens(get(inter, `${p}.transformer_blocks.0.norm1::out`)))],
        [`${p}.transformer_blocks.0.attn2::out`, () => block0.attn2.forward(tokens(get(inter, `${p}.transformer_blocks.0.attn2::in.arg0`)), tokens(get(inter, `${p}.transformer_blocks.0.attn2::in.encoder_hidden_states`)))],
        [`${p}.transformer_blocks.0.ff::out`, () => block0.ff.forward(tokens(get(inter, `${p}.transformer_blocks.0.ff::in.arg0`)))],
        [`${p}.transformer_blocks.0::out`, () => block0.forward(tokens(get(inter, `${p}.proj_in::out`)), ehs)],
        [`${p}::out.0`, () => t0.forward(nhwcTensor(get(inter, 'down_blocks.0.resnets.0::out')), ehs)],
        ['down_blocks.0.downsamplers.0::out', () => d0.downsamplers!.items[0].forward(nhwcTensor(get(inter, 'down_blocks.0.downsamplers.0::in.arg0')))],
        ['down_blocks.1::out.0', () => unet.downBlocks.items[1].forward(nhwcTensor(get(inter, 'down_blocks.0.downsamplers.0::out')), ctx).out],
        ['mid_block::out', () => unet.midBlock.forward(nhwcTensor(get(inter, 'down_blocks.3::out.0')), ctx)],
        ['up_blocks.0.upsamplers.0::out', () => unet.upBlocks!.items[0].upsamplers!.items[0].forward(nhwcTensor(get(inter, 'up_blocks.0.upsamplers.0::in.arg0')))],
        [
          'up_blocks.1::out',
          () =>
            unet.upBlocks!.items[1].forward(
              nhwcTensor(get(inter, 'up_blocks.0.upsamplers.0::out')),
              ['down_blocks.1::out.0', 'down_blocks.2::out.1.0', 'down_blocks.2::out.1.1'].map((k) => nhwcTensor(get(inter, k))),
              ctx,
              [8, 8],
            ),
        ],
        ['up_blocks.3.resnets.0::out', () => unet.upBlocks!.items[3].resnets.items[0].forward(nhwcTensor(get(inter, 'up_blocks.3.resnets.0::in.arg0')), temb)],
        ['conv_out::out', () => unet.convOut!.forward(nhwcTensor(get(inter, 'conv_out::in.arg0')))],
      ];
      for (const [key, run] of checks) {
        const y = tf.tidy(run);
        await expectClose(y, get(inter, key), key);
        y.dispose();
      }
      tf.dispose([ehs, temb]);
    });

    it('encode (down and mid blocks) of an encoder-only UNet equals the mid block of the full forward (caseA)', async () => {
      const encoder = new UNet2DConditionModel(unet.config, { encoderOnly: true });
      const keys = new Set([...encoder.namedParameters()].map(([k]) => k));
      expect([...keys].some((k) => k.startsWith('up_blocks.') || k.startsWith('conv_out.'))).toBe(false);
      const all = await unet.stateDict();
      encoder.loadStateDict(new Map([...all].filter(([k]) => keys.has(k))));
      const sample = nhwcTensor(get(cases, 'caseA.sample'));
      const ehs = tokens(get(cases, 'caseA.encoder_hidden_states'));
      const mid = encoder.encode(sample, Array.from(get(cases, 'caseA.timestep').data), ehs);
      await expectClose(mid, get(inter, 'mid_block::out'), 'mid_block::out');
      expect(() => encoder.forward(sample, 1, ehs)).toThrow(/encoder-only: use encode\(\)/);
      tf.dispose([sample, ehs, mid]);
      encoder.dispose();
    });

    it('keeps the tensor count flat over repeated forward calls', async () => {
      const sample = nhwcTensor(get(cases, 'caseB.sample'));
      const ehs = tokens(get(cases, 'caseB.encoder_hidden_states'));
      const before = tf.memory().numTensors;
      for (let i = 0; i < 3; i++) unet.forward(sample, 500, ehs).dispose();
      expect(tf.memory().numTensors).toBe(before);
      tf.dispose([sample, ehs]);
    });
  });
}
