// DISTS averages over whole feature maps; float32 reductions over tens of thousands of positions drift on wasm
// (measured 5e-5 at 190×250 and 512² before the fix). Checked against the same statistics computed in float64 from
// the backend's own trunk features, which isolates the reductions. (The cpu backend sums in float64 already.)
import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import { useBackend, type BackendName } from '@codiff/nn';
import { decodeImage, greyToRgb } from '@codiff/image-io';
import { degrade } from '@codiff/jpeg-codec';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { golden, sharedPhotos } from '../../../test-support/golden.js';
import type { Dists } from '../src/index.js';
import { loadDists } from '../src/node.js';

const photo = (path: string) => greyToRgb(decodeImage(new Uint8Array(readFileSync(sharedPhotos('test', path)))));

/** A crop of a photo and of its JPEG at QF 10, as [1, H, W, 3] in [0, 1]. */
function pair(path: string, width: number, height: number): [tf.Tensor4D, tf.Tensor4D] {
  const image = photo(path);
  const crop = { width, height, channels: 3 as const, data: new Uint8Array(width * height * 3) };
  for (let y = 0; y < height; y++) crop.data.set(image.data.subarray(y * image.width * 3, (y * image.width + width) * 3), y * width * 3);
  const jpeg = degrade(crop, { quality: 10 });
  const tensor = (d: Uint8Array) => tf.tensor4d(Float32Array.from(d, (v) => v / 255), [1, height, width, 3]);
  return [tensor(crop.data), tensor(jpeg.data as Uint8Array)];
}

/** DISTS from the backend's trunk features, with every mean, variance and covariance in float64. */
async function distsFloat64(dists: Dists, x: tf.Tensor4D, y: tf.Tensor4D): Promise<number> {
  const both = tf.concat([x, y], 0);
  const normalised = tf.div(tf.sub(both, [0.485, 0.456, 0.406]), [0.229, 0.224, 0.225]) as tf.Tensor4D;
  const features = [both, ...dists.vgg.stages(normalised, 'l2')];
  const alpha = await dists.weights.alpha.value.data();
  const beta = await dists.weights.beta.value.data();
  const total = [...alpha, ...beta].reduce((s, v) => s + v, 0);
  let similarity = 0;
  let offset = 0;
  for (const f of features) {
    const [, h, w, c] = f.shape;
    const data = await f.data();
    for (let k = 0; k < c; k++) {
      let mx = 0, my = 0;
      for (let i = 0; i < h * w; i++) (mx += data[i * c + k]), (my += data[(h * w + i) * c + k]);
      mx /= h * w;
      my /= h * w;
      let vx = 0, vy = 0, cov = 0;
      for (let i = 0; i < h * w; i++) {
        const dx = data[i * c + k] - mx;
        const dy = data[(h * w + i) * c + k] - my;
        vx += dx * dx;
        vy += dy * dy;
        cov += dx * dy;
      }
      [vx, vy, cov] = [vx / (h * w), vy / (h * w), cov / (h * w)];
      const s1 = (2 * mx * my + 1e-6) / (mx * mx + my * my + 1e-6);
      const s2 = (2 * cov + 1e-6) / (vx + vy + 1e-6);
      similarity += (alpha[offset + k] * s1 + beta[offset + k] * s2) / total;
    }
    offset += c;
  }
  tf.dispose([both, normalised, ...features.slice(1)]);
  return 1 - similarity;
}

// WebGPU runs on SwiftShader (a CPU) here: a smaller image keeps the test within minutes.
const SIZES: Record<string, readonly (readonly [string, number, number])[]> = {
  wasm: [['Kodak-nonLIVE1/kodim01.png', 250, 190], ['Classic5/barbara.png', 512, 512]],
  webgpu: [['Kodak-nonLIVE1/kodim01.png', 96, 64]],
};

for (const backend of ['wasm', 'webgpu'] as BackendName[]) describe(`DISTS precision on large images, ${backend}`, () => {
  let dists: Dists;
  let unavailable = '';
  beforeAll(async () => {
    try {
      await useBackend(backend);
    } catch (e) {
      unavailable = `${backend} unavailable: ${(e as Error).message}`;
      return;
    }
    dists = await loadDists(golden('dists-lpips', 'vgg16.safetensors'), golden('dists-lpips', 'dists_weights.safetensors'));
  });
  afterAll(() => {
    if (!dists) return;
    dists.dispose();
    for (const p of dists.vgg.parameters()) p.dispose();
  });

  for (const [path, width, height] of SIZES[backend]) {
    it(`${width}×${height}: within 1e-6 of float64 statistics`, async ({ skip }) => {
      if (unavailable) skip(unavailable);
      await useBackend(backend);
      const [x, y] = pair(path, width, height);
      const score = dists.score(x, y);
      const got = (await score.data())[0];
      const reference = await distsFloat64(dists, x, y);
      expect(Math.abs(got - reference)).toBeLessThanOrEqual(1e-6);
      tf.dispose([x, y, score]);
    });
  }

});
