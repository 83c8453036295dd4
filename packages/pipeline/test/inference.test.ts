import * as tf from '@tensorflow/tfjs-core';
import { useBackend, type HostTensor } from '@codiff/nn';
import { beforeAll, describe, expect, it } from 'vitest';
import { expectClose, goldenJson, nhwcTensor, readAll, relMaxError, tensorAt } from '../../../test-support/tfjs.js';
import {
  adainColorFix,
  channelMeanStd,
  gaussianTileWeights,
  latentTiles,
  officialUint8,
  tiledPrediction,
  waveletColorFix,
  waveletDecomposition,
} from '../src/index.js';

interface TilingCase {
  latent_hw: [number, number];
  tile_size: number;
  tile_overlap: number;
  tiled: boolean;
  storage: 'full' | 'reduced';
  tile_origins_yx: [number, number][];
  unet_calls: number[][];
}
const tiling = goldenJson('inference', 'tiling.json') as {
  standin: { constants: Record<string, number> };
  cases: Record<string, TilingCase>;
};

let tensors: Map<string, HostTensor>;
let colors: Map<string, HostTensor>;
beforeAll(async () => {
  tensors = await readAll('inference', 'tiling.safetensors');
  colors = await readAll('inference', 'colorfix.safetensors');
});

/**
 * The golden's stand-in UNet "A", NHWC: tanh(k·x)·(1 + g·sin(fi·i + pi)·cos(fj·j + pj)) + shift·x_left[(c+1) % C]
 * + emb·s[c], with i, j inside the tile and s[c] = Σ_t ((t+1)/T)·e[t, c mod D] over all tokens.
 */
function standIn(emb: tf.Tensor3D) {
  const k = tiling.standin.constants;
  return (x: tf.Tensor4D): tf.Tensor4D =>
    tf.tidy(() => {
      const [, h, w, c] = x.shape;
      const [, t, d] = emb.shape;
      const i = tf.reshape(tf.range(0, h), [1, h, 1, 1]), j = tf.reshape(tf.range(0, w), [1, 1, w, 1]);
      const ripple = tf.add(1, tf.mul(k.g, tf.mul(tf.sin(tf.add(tf.mul(i, k.fi), k.pi_)), tf.cos(tf.add(tf.mul(j, k.fj), k.pj)))));
      const left = tf.pad(tf.slice(x, [0, 0, 0, 0], [-1, -1, w - 1, -1]), [[0, 0], [0, 0], [1, 0], [0, 0]]);
      const rolled = tf.gather(left, Array.from({ length: c }, (_, ch) => (ch + 1) % c), 3);
      const positions = tf.reshape(tf.div(tf.range(1, t + 1), t), [1, t, 1]);
      const s = tf.gather(tf.sum(tf.mul(emb, positions), 1), Array.from({ length: c }, (_, ch) => ch % d), 1);
      return tf.add(tf.add(tf.mul(tf.tanh(tf.mul(x, k.tanh_scale)), ripple), tf.mul(rolled, k.shift)), tf.mul(tf.reshape(s, [1, 1, 1, c]), k.emb)) as tf.Tensor4D;
    });
}

describe('latent tiling (golden/inference/tiling)', () => {
  beforeAll(() => useBackend('cpu'));

  it('the Gaussian tile weights equal the official float64 weights', () => {
    for (const n of [10, 16, 64, 96]) {
      const ref = tensorAt(tensors, `gaussian_weights_t${n}`).data;
      expect(relMaxError(gaussianTileWeights(n), ref), `t${n}`).toBeLessThan(1e-6);
    }
  });

  for (const [name, c] of Object.entries(tiling.cases)) {
    it(`${name}: the tiles the official loop visits, its weight map and the blended prediction`, async () => {
      const [h, w] = c.latent_hw;
      const grid = latentTiles(h, w, c.tile_size, c.tile_overlap);
      expect(grid !== null).toBe(c.tiled);
      const origins = grid ? grid.origins.map(([y, x]) => [y, x]) : [[0, 0]];
      expect(origins).toEqual(c.tile_origins_yx);
      if (grid) {
        const weights = gaussianTileWeights(grid.tile);
        const map = new Float32Array(h * w);
        for (const [y0, x0] of grid.origins) for (let y = 0; y < grid.tile; y++) for (let x = 0; x < grid.tile; x++) map[(y0 + y) * w + x0 + x] += weights[y * grid.tile + x];
        expect(relMaxError(map, tensorAt(tensors, `${name}.weight_map`).data)).toBeLessThan(1e-6);
      }
      const latentU8 = tensorAt(tensors, `${name}.latent_u8`);
      const z = tf.tidy(() => tf.div(tf.sub(nhwcTensor(latentU8), 128), 32) as tf.Tensor4D);
      const e = tensorAt(tensors, `${name}.emb`);
      const emb = tf.tensor3d(e.data, e.shape as [number, number, number]);
      const calls: number[][] = [];
      const unet = standIn(emb);
      const before = tf.memory().numTensors;
      const blended = await tiledPrediction(z, (tile) => (calls.push([1, tile.shape[1], tile.shape[2]]), unet(tile)), { tile: c.tile_size, overlap: c.tile_overlap });
      expect(tf.memory().numTensors - before).toBe(1);
      expect(calls).toEqual(c.unet_calls);
      if (c.storage === 'full') {
        await expectClose(blended, tensorAt(tensors, `${name}.blended`), 'blended');
      } else {
        const nchw = tf.tidy(() => tf.transpose(blended, [0, 3, 1, 2]));
        const rows = tf.tidy(() => tf.sum(nchw, 3)), cols = tf.tidy(() => tf.sum(nchw, 2));
        const ref = (k: string) => tensorAt(tensors, `${name}.${k}`).data;
        expect(relMaxError(await rows.data(), ref('blended_row_sums'))).toBeLessThan(1e-5);
        expect(relMaxError(await cols.data(), ref('blended_col_sums'))).toBeLessThan(1e-5);
        const strided = tf.tidy(() => tf.stridedSlice(blended, [0, 0, 0, 0], [1, h, w, 4], [1, 7, 7, 1]));
        await expectClose(strided, tensorAt(tensors, `${name}.blended_stride7`), 'blended[::7, ::7]');
        tf.dispose([nchw, rows, cols, strided]);
      }
      tf.dispose([z, emb, blended]);
    });
  }

  it('never hangs where the official loop does (tile ≤ overlap): the overlap shrinks to half the tile', () => {
    const wide = latentTiles(32, 300, 96, 32)!;
    expect([wide.tile, wide.overlap]).toEqual([32, 16]);
    expect(wide.origins.map(([, x]) => x)).toEqual([...Array.from({ length: 17 }, (_, i) => i * 16), 268]);
    const small = latentTiles(8, 40, 16, 8)!;
    expect([small.tile, small.overlap, small.origins.length]).toEqual([8, 4, 9]);
    expect(() => latentTiles(10, 10, 0, 4)).toThrow(/tile size must be an integer ≥ 1 \(got 0\)/);
  });

  it('aborting between tiles stops the loop and frees its tensors', async () => {
    const z = tf.zeros([1, 40, 40, 4]) as tf.Tensor4D;
    const controller = new AbortController();
    const before = tf.memory().numTensors;
    let calls = 0;
    const run = tiledPrediction(z, (t) => tf.mul(t, 2), { tile: 16, overlap: 8, onTile: (done) => (++calls, done === 2 && controller.abort(new Error('cancelled'))), signal: controller.signal });
    await expect(run).rejects.toThrow('cancelled');
    expect(calls).toBe(2);
    expect(tf.memory().numTensors).toBe(before);
    z.dispose();
  });

  it('an abort sent from another task (a worker message, a click) lands between tiles, not after the last one', async () => {
    const z = tf.zeros([1, 40, 40, 4]) as tf.Tensor4D;
    const controller = new AbortController();
    let calls = 0;
    const run = tiledPrediction(z, (t) => (++calls, tf.mul(t, 2)), { tile: 16, overlap: 8, signal: controller.signal });
    setTimeout(() => controller.abort(new Error('cancelled')), 0);
    await expect(run).rejects.toThrow('cancelled');
    expect(calls).toBeLessThan(latentTiles(40, 40, 16, 8)!.origins.length);
    z.dispose();
  });
});

for (const backend of ['cpu', 'wasm'] as const) {
  describe(`colour fixes and the uint8 output (golden/inference/colorfix) on ${backend}`, () => {
    beforeAll(() => useBackend(backend));

    for (const img of ['astro', 'coffee']) {
      it(`${img}: AdaIN and wavelet floats, and the official float32 uint8 path bit for bit`, async () => {
        const restored = nhwcTensor(tensorAt(colors, `${img}.restored`));
        const jpeg = tensorAt(colors, `${img}.jpeg_u8`);
        const jpeg01 = tf.tidy(() => tf.div(tf.tensor4d(jpeg.data, [1, ...jpeg.shape] as [number, number, number, number]), 255) as tf.Tensor4D);
        const u8 = (k: string) => Array.from(tensorAt(colors, `${img}.f32.${k}`).data);
        for (const [fix, key] of [['none', 'u8_first'], ['adain', 'u8_adain'], ['wavelet', 'u8_wavelet']] as const) {
          const out = officialUint8(restored, jpeg01, fix);
          expect(Array.from(await out.data()), `${fix}`).toEqual(u8(key));
          out.dispose();
        }
        const first = u8('u8_first');
        const content = tf.tidy(() => tf.div(tf.tensor4d(first, [1, ...jpeg.shape] as [number, number, number, number]), 255) as tf.Tensor4D);
        const stats = channelMeanStd(content);
        const meanStd = tf.tidy(() => tf.concat([tf.reshape(stats.mean, [1, 3]), tf.reshape(stats.std, [1, 3])]));
        const refStats = tensorAt(colors, `${img}.content_mean_std`);
        expect(relMaxError(await meanStd.data(), refStats.data)).toBeLessThan(1e-4);
        const adain = adainColorFix(content, jpeg01), wavelet = waveletColorFix(content, jpeg01);
        await expectClose(adain, tensorAt(colors, `${img}.adain_float`), 'adain');
        await expectClose(wavelet, tensorAt(colors, `${img}.wavelet_float`), 'wavelet');
        if (img === 'astro') {
          const { high } = waveletDecomposition(content), { low } = waveletDecomposition(jpeg01);
          await expectClose(high, tensorAt(colors, 'astro.wavelet_content_high'), 'content high band');
          await expectClose(low, tensorAt(colors, 'astro.wavelet_style_low'), 'style low band');
          tf.dispose([high, low]);
        }
        tf.dispose([restored, jpeg01, content, stats.mean, stats.std, meanStd, adain, wavelet]);
      });
    }
  });
}
