import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { psnr, ssim, type Image8 } from '../src/index.js';
import { golden, readPngRgb } from '../../../test-support/golden.js';

interface Row {
  reference: string;
  test: string;
  crop: number;
  psnr_rgb: number;
  psnr_y: number;
  ssim_y: number;
  ssim_rgb: number;
}

// scikit-image's values for the golden PNG pairs; scripts/skimage_vectors.py records how they were made.
const vectors = JSON.parse(readFileSync(new URL('./skimage-vectors.json', import.meta.url), 'utf8')) as { rows: Row[] };

describe('PSNR and SSIM equal scikit-image', () => {
  for (const row of vectors.rows) {
    it(`${row.test} vs ${row.reference}, crop ${row.crop}`, () => {
      const a = readPngRgb(golden(row.reference));
      const b = readPngRgb(golden(row.test));
      const crop = row.crop;
      expect(psnr(a, b, { on: 'rgb', crop })).toBeCloseTo(row.psnr_rgb, 9);
      expect(psnr(a, b, { on: 'y', crop })).toBeCloseTo(row.psnr_y, 9);
      expect(ssim(a, b, { on: 'y', crop })).toBeCloseTo(row.ssim_y, 9);
      expect(ssim(a, b, { on: 'rgb', crop })).toBeCloseTo(row.ssim_rgb, 9);
    });
  }
});

describe('metric edge cases', () => {
  const image = readPngRgb(golden('dists-lpips', 'images', 's64_ref.png'));

  it('identical images: PSNR ∞, SSIM 1; Y is the default', () => {
    expect(psnr(image, image)).toBe(Infinity);
    expect(ssim(image, image)).toBeCloseTo(1, 12);
    const other = readPngRgb(golden('dists-lpips', 'images', 's64_noise.png'));
    expect(psnr(image, other)).toBe(psnr(image, other, { on: 'y' }));
  });

  it('grey images are measured as they are', () => {
    const grey: Image8 = { width: 16, height: 16, channels: 1, data: new Uint8Array(256).map((_, i) => i) };
    const brighter: Image8 = { ...grey, data: grey.data.map((v) => Math.min(255, v + 2)) };
    // Every value but the clipped 254, 255 (→ 255, 255) moves by 2.
    const mse = (254 * 4 + 1) / 256;
    expect(psnr(grey, brighter)).toBeCloseTo(10 * Math.log10((255 * 255) / mse), 9);
  });

  it('bad input: clear errors', () => {
    const small: Image8 = { width: 10, height: 10, channels: 3, data: new Uint8Array(300) };
    expect(() => ssim(small, small)).toThrow(/at least 11×11/);
    expect(() => ssim(image, image, { crop: 27 })).toThrow(/at least 11×11 pixels after cropping, got 10×10/);
    expect(() => psnr(image, small)).toThrow(/sizes differ: 64×64 vs 10×10/);
    expect(() => psnr(image, image, { crop: 32 })).toThrow(/leaves nothing/);
    expect(() => psnr(image, image, { crop: -1 })).toThrow(/non-negative integer/);
    expect(() => psnr({ ...small, data: new Uint8Array(5) }, small)).toThrow(/5 bytes do not hold 10×10×3/);
  });
});
