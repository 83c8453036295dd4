import * as tf from '@tensorflow/tfjs-core';
import { useBackend, type HostTensor } from '@codiff/nn';
import { AutoencoderKL, vaeConfigFromDiffusers } from '@codiff/sd-unet';
import { beforeAll, describe, expect, it } from 'vitest';
import { expectClose, goldenJson, nhwcTensor, readAll, tensorAt } from '../../../test-support/tfjs.js';
import { tiledDecoder, tiledEncoder, vaeTiles } from '../src/index.js';

const manifest = goldenJson('inference', 'vaehook', 'manifest.json') as {
  cases: Record<'enc' | 'dec', { tile_input_bboxes_x1x2y1y2: number[][]; tile_output_bboxes_x1x2y1y2: number[][] }>;
};

let cases: Map<string, HostTensor>;
let vae: AutoencoderKL;
beforeAll(async () => {
  await useBackend('wasm');
  cases = await readAll('inference', 'vaehook', 'vaehook.safetensors');
  vae = new AutoencoderKL(vaeConfigFromDiffusers(goldenJson('vae-tiny', 'config.json')));
  vae.loadStateDict(await readAll('vae-tiny', 'weights.safetensors'));
});

describe('tiled VAE as CODiff’s VAEHook (golden/inference/vaehook, vae-tiny)', () => {
  it('splits into the official tiles (input boxes with padding, output cores)', () => {
    const enc = vaeTiles(96, 160, 24, 32, false), dec = vaeTiles(24, 24, 1, 11, true);
    expect(enc.inputs).toEqual(manifest.cases.enc.tile_input_bboxes_x1x2y1y2);
    expect(enc.outputs).toEqual(manifest.cases.enc.tile_output_bboxes_x1x2y1y2);
    expect(dec.inputs).toEqual(manifest.cases.dec.tile_input_bboxes_x1x2y1y2);
    expect(dec.outputs).toEqual(manifest.cases.dec.tile_output_bboxes_x1x2y1y2);
  });

  it('encoder: 8 tiles with shared GroupNorm statistics give the official tiled output (and untiled when small)', async () => {
    const u8 = tensorAt(cases, 'enc.x_u8');
    const x = tf.tidy(() => tf.sub(tf.mul(tf.div(tf.tensor4d(u8.data, [1, 96, 160, 3]), 255), 2), 1) as tf.Tensor4D);
    const before = tf.memory().numTensors;
    const tiled = await tiledEncoder(vae, x, { tile: 24 });
    expect(tf.memory().numTensors - before).toBe(1);
    await expectClose(tiled, tensorAt(cases, 'enc.encoder_out_tiled'), 'encoder output (tiled)');
    const untiled = await tiledEncoder(vae, x);
    await expectClose(untiled, tensorAt(cases, 'enc.encoder_out_untiled'), 'encoder output (below the threshold)');
    tf.dispose([x, tiled, untiled]);
  });

  it('decoder: 4 tiles of one latent pixel (+11 of context) give the official tiled output', async () => {
    const z = nhwcTensor(tensorAt(cases, 'dec.z'));
    const seen: number[] = [];
    const latent = vae.postQuantConv.forward(z);
    const decoded = await tiledDecoder(vae, latent, { tile: 1, onProgress: (d) => seen.push(d) });
    await expectClose(decoded, tensorAt(cases, 'dec.sample_tiled'), 'decoder output (tiled)');
    expect(seen.at(-1)).toBe(seen.length);
    tf.dispose([z, latent, decoded]);
  });
});
