import * as tf from '@tensorflow/tfjs-core';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { readImageFile } from '@codiff/image-io/node';
import { degrade } from '@codiff/jpeg-codec';
import { psnr } from '@codiff/metrics';
import { useBackend } from '@codiff/nn';
import { readSafetensorsFile } from '@codiff/nn/node';
import { OPTIONAL_MODEL_FILES, PixelUnshuffleAutoencoder, restoreImage, smoothBlockEdges, STAND_IN_MODEL_FILES, type CodiffGenerator, type Pixels } from '@codiff/pipeline';
import { loadCodiffFolder } from '@codiff/pipeline/node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sharedPhotos } from '../../../test-support/golden.js';
import { liteModelDir } from '../src/node.js';

let g: CodiffGenerator;
beforeAll(async () => {
  await useBackend('wasm');
  g = await loadCodiffFolder(liteModelDir());
});
afterAll(() => g?.dispose());

describe('codiff-lite as shipped', () => {
  it('holds its files (the networks F16, the post-filter F32) within 25 MB, and loads as a fully trained UNet on the pixel-unshuffle stand-in', async () => {
    const bytes = [...STAND_IN_MODEL_FILES, ...OPTIONAL_MODEL_FILES].reduce((n, f) => n + statSync(join(liteModelDir(), f)).size, 0);
    expect(bytes).toBeLessThanOrEqual(25e6);
    const unet = await readSafetensorsFile(join(liteModelDir(), 'unet/diffusion_pytorch_model.safetensors'));
    expect(new Set([...unet.values()].map((t) => t.storedAs))).toEqual(new Set(['F16']));
    expect(g.training).toBe('full');
    expect(g.residual).toBe(true);
    expect(g.vae).toBeInstanceOf(PixelUnshuffleAutoencoder);
  });

  it('restores real photos better than their JPEG (colour at QF 10, grey at QF 20) and frees what it allocates', async () => {
    const before = tf.memory().numTensors;
    for (const [file, quality] of [[sharedPhotos('val', 'val20_001.png'), 10], [sharedPhotos('test', 'Classic5', 'boats.png'), 20]] as const) {
      const original = await readImageFile(file);
      const jpeg = degrade(original, { quality }) as Pixels;
      const restored = await restoreImage(g, jpeg);
      expect([restored.width, restored.height, restored.channels]).toEqual([original.width, original.height, original.channels]);
      const [a, b] = [psnr(original, jpeg, { on: 'y8' }), psnr(original, restored, { on: 'y8' })];
      console.info(`${file.split('/').at(-1)} QF ${quality}: JPEG ${a.toFixed(2)} dB → codiff-lite ${b.toFixed(2)} dB`);
      expect(b).toBeGreaterThan(a + MIN_GAIN_DB);
    }
    expect(tf.memory().numTensors).toBe(before);
  });
});

/** The least gain the tests ask for (the model card reports the measured gains). */
const MIN_GAIN_DB = 0.3;

describe('codiff-lite’s luma post-filter', () => {
  it('is in the folder, fitted on every class it could, and on request adds PSNR-Y beyond the smoothing on a photo it was not fitted on', async () => {
    expect(g.postFilter).toBeDefined();
    expect(g.postFilter!.stages).toBe(2);
    expect(g.postFilter!.provenance).toMatchObject({ photos: '127', qualities: '5,10,20,30,40,60', stages: '2' });
    const original = await readImageFile(sharedPhotos('val', 'val20_001.png'));
    const jpeg = degrade(original, { quality: 10 }) as Pixels;
    const smoothed = smoothBlockEdges(await restoreImage(g, jpeg, { deblock: false })).image;
    expect(await restoreImage(g, jpeg)).toEqual(smoothed);
    const filtered = await restoreImage(g, jpeg, { postFilter: true });
    expect(filtered).toEqual(smoothBlockEdges(g.postFilter!.apply(smoothed, jpeg)).image);
    const [before, after] = [psnr(original, smoothed, { on: 'y8' }), psnr(original, filtered, { on: 'y8' })];
    console.info(`val20_001 QF 10: smoothed ${before.toFixed(2)} dB → post-filter ${after.toFixed(2)} dB`);
    expect(after).toBeGreaterThan(before + 0.05);
  });
});
