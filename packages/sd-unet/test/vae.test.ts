import * as tf from '@tensorflow/tfjs-core';
import { useBackend, type HostTensor } from '@codiff/nn';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AutoencoderKL, vaeConfigFromDiffusers } from '../src/index.js';
import { backendsUnderTest, expectClose, goldenJson, nhwcTensor, readAll } from '../../../test-support/tfjs.js';

let weights: Map<string, HostTensor>;
let cases: Map<string, HostTensor>;
let inter: Map<string, HostTensor>;

beforeAll(async () => {
  weights = await readAll('vae-tiny', 'weights.safetensors');
  cases = await readAll('vae-tiny', 'cases.safetensors');
  inter = await readAll('vae-tiny', 'intermediates.safetensors');
});

const BACKENDS = await backendsUnderTest();

for (const backend of BACKENDS) {
  describe(`AutoencoderKL (vae-tiny) on ${backend}`, () => {
    let vae: AutoencoderKL;
    beforeAll(async () => {
      await useBackend(backend);
      // One tfjs-core instance: the backend chosen through @codiff/nn is the one these tensors use.
      expect(tf.getBackend()).toBe(backend);
      vae = new AutoencoderKL(vaeConfigFromDiffusers(goldenJson('vae-tiny', 'config.json')));
      const report = vae.loadStateDict(weights);
      expect(report.loaded).toHaveLength(180);
    });
    afterAll(() => vae.dispose());

    it.each(['encA', 'encB'])('%s: moments, mean, logvar, std and decode(mean)', async (c) => {
      const x = nhwcTensor(cases.get(`${c}.x`)!);
      const dist = vae.encode(x);
      await expectClose(dist.moments, cases.get(`${c}.moments`)!, `${c}.moments`);
      await expectClose(dist.mean, cases.get(`${c}.mean`)!, `${c}.mean`);
      await expectClose(dist.logvar, cases.get(`${c}.logvar`)!, `${c}.logvar`);
      await expectClose(dist.std, cases.get(`${c}.std`)!, `${c}.std`);
      const recon = vae.decode(dist.mean);
      await expectClose(recon, cases.get(`${c}.recon`)!, `${c}.recon`);
      tf.dispose([x, recon, dist.moments, dist.mean, dist.logvar, dist.std]);
    });

    it.each(['decA', 'decB'])('%s: decode(z)', async (c) => {
      const z = nhwcTensor(cases.get(`${c}.z`)!);
      const out = vae.decode(z);
      await expectClose(out, cases.get(`${c}.out`)!, `${c}.out`);
      tf.dispose([z, out]);
    });

    it('every stored intermediate of encA/decode matches', async () => {
      // Each submodule is run on its own recorded input and compared with its recorded output.
      const run: Record<string, (x: tf.Tensor4D) => tf.Tensor4D> = {
        'encoder.conv_in': (x) => vae.encoder.convIn.forward(x),
        'encoder.conv_out': (x) => vae.encoder.convOut.forward(x),
        'encoder.mid_block.attentions.0': (x) => vae.encoder.midBlock.attentions.items[0].forwardSpatial(x),
        'decoder.mid_block.attentions.0': (x) => vae.decoder.midBlock.attentions.items[0].forwardSpatial(x),
        'decoder.up_blocks.0.upsamplers.0': (x) => vae.decoder.upBlocks.items[0].upsamplers!.items[0].forward(x),
        'decoder.conv_out': (x) => vae.decoder.convOut.forward(x),
        post_quant_conv: (x) => vae.postQuantConv.forward(x),
      };
      let checked = 0;
      for (const [name, fn] of Object.entries(run)) {
        const input = inter.get(`${name}::in.arg0`);
        const output = inter.get(`${name}::out`);
        expect(input && output, name).toBeTruthy();
        const x = nhwcTensor(input!);
        const y = fn(x);
        await expectClose(y, output!, name);
        tf.dispose([x, y]);
        checked++;
      }
      expect(checked).toBe(7);
    });

    it('keeps the tensor count flat over repeated encode/decode', async () => {
      const x = nhwcTensor(cases.get('encA.x')!);
      const before = tf.memory().numTensors;
      for (let i = 0; i < 3; i++) {
        const d = vae.encode(x);
        const z = vae.sample(d, 7);
        tf.dispose([d.moments, d.mean, d.logvar, d.std, z, vae.decode(z)]);
      }
      expect(tf.memory().numTensors).toBe(before);
      x.dispose();
    });
  });
}
