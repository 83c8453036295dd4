import { readImageFile } from '@codiff/image-io/node';
import { degrade, toGrey } from '@codiff/jpeg-codec';
import { psnr } from '@codiff/metrics';
import { writeSafetensors } from '@codiff/nn';
import { describe, expect, it } from 'vitest';
import { sharedPhotos } from '../../../test-support/golden.js';
import {
  lumaPostFilterFromBytes,
  LumaPostFilter,
  LumaPostFilterFit,
  PipelineError,
  POST_FILTER_CLASSES,
  POST_FILTER_FEATURES,
  smoothBlockEdges,
  type Pixels,
} from '../src/index.js';

const K = POST_FILTER_FEATURES;
/** Feature indices: the restored 5×5 (row-major), the JPEG's 3×3, the bias. */
const RESTORED_CENTRE = 12, JPEG_CENTRE = 25 + 4, BIAS = K - 1;
/** Classes: ((phase row · 8 + phase column) · 8 activity levels + level) · 3 directions + direction. */
const classOf = (phaseY: number, phaseX: number, level = 0, direction = 0) => ((phaseY * 8 + phaseX) * 8 + level) * 3 + direction;

/** A filter with the same row in every class, or `row(c)` per class. */
function filterOf(row: (cls: number) => Record<number, number>): LumaPostFilter {
  const w = new Float32Array(POST_FILTER_CLASSES * K);
  for (let c = 0; c < POST_FILTER_CLASSES; c++) for (const [k, v] of Object.entries(row(c))) w[c * K + Number(k)] = v;
  return new LumaPostFilter(w);
}

const noise = (w: number, h: number, channels: 1 | 3, seed: number): Pixels => {
  let s = seed;
  const data = Uint8Array.from({ length: w * h * channels }, () => ((s = (s * 1103515245 + 12345) >>> 0) >>> 24));
  return { width: w, height: h, channels, data };
};

const QF10 = { quality: 10 } as const;

describe('luma post-filter', () => {
  it('adds each pixel’s luma correction to every channel: JPEG centre − restored centre gives the JPEG’s luma', () => {
    const jpegMinusRestored = filterOf(() => ({ [RESTORED_CENTRE]: -1, [JPEG_CENTRE]: 1 }));
    const [restored, jpeg] = [noise(19, 13, 1, 1), noise(19, 13, 1, 2)];
    expect(jpegMinusRestored.apply(restored, jpeg).data).toEqual(jpeg.data);
    // Colour: every channel moves by the BT.601 luma difference, rounded and clamped.
    const [rgb, rgbJpeg] = [noise(19, 13, 3, 3), noise(19, 13, 3, 4)];
    const out = jpegMinusRestored.apply(rgb, rgbJpeg);
    const y = (p: Pixels, i: number) => 0.299 * p.data[3 * i] + 0.587 * p.data[3 * i + 1] + 0.114 * p.data[3 * i + 2];
    for (const i of [0, 40, 246]) {
      const d = y(rgbJpeg, i) - y(rgb, i);
      expect([...out.data.subarray(3 * i, 3 * i + 3)]).toEqual([0, 1, 2].map((c) => Math.min(255, Math.max(0, Math.round(rgb.data[3 * i + c] + d)))));
    }
  });

  it('picks each pixel’s class by its place on the grid it is given', () => {
    // On a flat image (activity level 0, no direction) a bias in the classes of phase column 3 moves those columns only.
    const column3 = filterOf((c) => (c === classOf(0, 3) || c === classOf(5, 3) ? { [BIAS]: 10 } : {}));
    const flat: Pixels = { width: 16, height: 8, channels: 1, data: new Uint8Array(128).fill(100) };
    const row = (p: Pixels, y: number) => [...p.data.subarray(y * 16, y * 16 + 16)];
    const aligned = column3.apply(flat, flat);
    expect(row(aligned, 0)).toEqual(Array.from({ length: 16 }, (_, x) => (x % 8 === 3 ? 110 : 100)));
    expect(row(aligned, 1)).toEqual(new Array(16).fill(100));
    // Grid at rows 3, columns 2 mod 8: phase (0, 3) is row 3, columns 5 and 13; phase (5, 3) is row 0.
    const shifted = column3.apply(flat, flat, { top: 3, left: 2 });
    for (const y of [0, 3]) expect(row(shifted, y)).toEqual(Array.from({ length: 16 }, (_, x) => (x % 8 === 5 ? 110 : 100)));
    expect(row(shifted, 1)).toEqual(new Array(16).fill(100));
  });

  it('fitted to a known filter, reproduces it: within one level on 99 % of the pixels', async () => {
    // Targets made by a filter that differs per phase and depends on both neighbourhoods.
    // Corrections of a few levels (none clamped): differences of neighbours, of the JPEG and the restore, a bias.
    const truthFilter = filterOf((c) => {
      const k = 0.25 * ((c >> 5) % 3);
      return { [RESTORED_CENTRE]: 0.3 - k, [RESTORED_CENTRE + 1]: -0.3, [JPEG_CENTRE]: k, [BIAS]: (c % 7) - 3 };
    });
    const fit = new LumaPostFilterFit();
    const photos = ['val20_001.png', 'val20_002.png'].map((f) => sharedPhotos('val', f));
    const pairs = await Promise.all(
      photos.map(async (file) => {
        // Levels 64..191, so that no target is clamped (a clamped target is not the filter's).
        const grey = toGrey(await readImageFile(file)) as Pixels;
        const photo = { ...grey, data: grey.data.map((v) => 64 + (v >> 1)) };
        const jpeg = degrade(photo, QF10) as Pixels;
        return { restored: smoothBlockEdges(jpeg).image, jpeg };
      }),
    );
    for (const { restored, jpeg } of pairs) fit.add(restored, jpeg, truthFilter.apply(restored, jpeg));
    // Two photos are ~160 pixels per class, too few for the default: fit every class that has pixels.
    const fitted = fit.solve({ minSamples: 1 });
    const { restored, jpeg } = pairs[0];
    const [want, got] = [truthFilter.apply(restored, jpeg), fitted.apply(restored, jpeg)];
    const off = want.data.filter((v, i) => Math.abs(v - got.data[i]) > 1).length;
    expect(off / want.data.length).toBeLessThan(0.01);
    expect(fitted.provenance.samples).toBe(String(pairs.reduce((n, p) => n + p.restored.data.length, 0)));
  });

  it('fitted on JPEGs of photos, deblocks another photo’s JPEG beyond the block-edge smoothing', async () => {
    const fit = new LumaPostFilterFit();
    const read = async (f: string) => (await readImageFile(sharedPhotos('val', f))) as Pixels;
    // 8 photos of 320² at QF 10 and 20: 1.6 M pixels, ~1,000 per class.
    for (const f of ['00081', '002', '00246', '003', '00371', '004', '00474', '005'].map((n) => `val20_${n}.png`)) {
      const photo = await read(f);
      for (const quality of [10, 20]) {
        const jpeg = degrade(photo, { quality }) as Pixels;
        fit.add(smoothBlockEdges(jpeg).image, jpeg, photo);
      }
    }
    const filter = fit.solve();
    const photo = await read('val20_001.png');
    const jpeg = degrade(photo, QF10) as Pixels;
    const smoothed = smoothBlockEdges(jpeg).image;
    const [before, after] = [psnr(photo, smoothed, { on: 'y8' }), psnr(photo, filter.apply(smoothed, jpeg), { on: 'y8' })];
    console.info(`val20_001 QF 10: JPEG smoothed ${before.toFixed(2)} dB → post-filter ${after.toFixed(2)} dB`);
    expect(after).toBeGreaterThan(before + 0.2);
  });

  it('round-trips through safetensors with its provenance, and refuses other files and mismatched images by name', async () => {
    const filter = filterOf((c) => ({ [BIAS]: c / 100, [JPEG_CENTRE]: 0.5 }));
    const back = await lumaPostFilterFromBytes(new LumaPostFilter(filter.weights, { photos: '3' }).toSafetensors());
    expect(back.weights).toEqual(filter.weights);
    expect(back.provenance).toEqual({ photos: '3' });

    const weight = { shape: [POST_FILTER_CLASSES, K], data: filter.weights };
    await expect(lumaPostFilterFromBytes(writeSafetensors({ weight }), 'x.safetensors')).rejects.toThrow(/x.safetensors is not a luma post-filter of this version \(format missing/);
    const format = { format: 'codiff-luma-post-filter/1' };
    await expect(lumaPostFilterFromBytes(writeSafetensors({ weight: { shape: [1, K], data: new Float32Array(K) } }, format))).rejects.toThrow(
      /expected 'weight' of shape \[stages, 1536, 35\] \(got \[1, 35\]\)/,
    );
    expect(() => new LumaPostFilter(new Float32Array(3))).toThrow(PipelineError);

    const [grey, rgb] = [noise(9, 9, 1, 5), noise(9, 9, 3, 6)];
    expect(() => filter.apply(grey, rgb)).toThrow(/the JPEG is 9×9×3, the restored image 9×9×1/);
    expect(() => filter.apply(grey, grey, { top: 8, left: 0 })).toThrow(/grid top must be an integer 0..7/);
    expect(() => new LumaPostFilterFit().solve({ ridge: 0 })).toThrow(/ridge must be positive/);
  });

  it('runs its stages in turn, each on the previous one’s output, and keeps them through safetensors', async () => {
    const first = filterOf(() => ({ [RESTORED_CENTRE]: -0.5, [JPEG_CENTRE]: 0.5 }));
    const second = filterOf((c) => ({ [BIAS]: (c % 5) - 2, [RESTORED_CENTRE + 1]: 0.1, [RESTORED_CENTRE]: -0.1 }));
    const both = LumaPostFilter.cascade([first, second], { photos: '1' });
    expect(both.stages).toBe(2);
    const [restored, jpeg] = [noise(23, 17, 3, 8), noise(23, 17, 3, 9)];
    const grid = { top: 2, left: 6 };
    const want = second.apply(first.apply(restored, jpeg, grid), jpeg, grid);
    expect(both.apply(restored, jpeg, grid)).toEqual(want);
    const back = await lumaPostFilterFromBytes(both.toSafetensors());
    expect([back.stages, back.provenance]).toEqual([2, { photos: '1' }]);
    expect(back.apply(restored, jpeg, grid)).toEqual(want);
  });

  it('leaves a class with too few pixels at no correction', () => {
    const fit = new LumaPostFilterFit();
    const restored = noise(16, 16, 1, 7);
    fit.add(restored, restored, { ...restored, data: restored.data.map((v) => Math.min(255, v + 5)) });
    // 256 pixels over at most 192 place-and-direction classes: none reaches the default 700.
    expect(fit.solve().weights.every((w) => w === 0)).toBe(true);
    expect(fit.solve({ minSamples: 1 }).weights.some((w) => w !== 0)).toBe(true);
  });
});
