import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { psnr, psnrB, ssim, type Image8 } from '../src/index.js';
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

describe('bounded memory', () => {
  /** SSIM over the whole image at once, the textbook way, to check the strip-wise sum. */
  function ssimWhole(a: Image8, b: Image8): number {
    const { width: w, height: h } = a;
    const g = Array.from({ length: 11 }, (_, i) => Math.exp(-((i - 5) ** 2) / 4.5));
    const gs = g.reduce((s, v) => s + v, 0);
    const mean = (f: (x: number, y: number) => number, x0: number, y0: number) => {
      let s = 0;
      for (let dy = 0; dy < 11; dy++) for (let dx = 0; dx < 11; dx++) s += (g[dy] * g[dx] * f(x0 + dx, y0 + dy)) / (gs * gs);
      return s;
    };
    const A = (x: number, y: number) => a.data[y * w + x];
    const B = (x: number, y: number) => b.data[y * w + x];
    let sum = 0;
    for (let y = 0; y + 11 <= h; y++) {
      for (let x = 0; x + 11 <= w; x++) {
        const ma = mean(A, x, y), mb = mean(B, x, y);
        const va = mean((u, v) => A(u, v) ** 2, x, y) - ma * ma;
        const vb = mean((u, v) => B(u, v) ** 2, x, y) - mb * mb;
        const cov = mean((u, v) => A(u, v) * B(u, v), x, y) - ma * mb;
        sum += ((2 * ma * mb + 6.5025) * (2 * cov + 58.5225)) / ((ma * ma + mb * mb + 6.5025) * (va + vb + 58.5225));
      }
    }
    return sum / ((w - 10) * (h - 10));
  }

  it('SSIM over strips of rows equals SSIM over the whole image (a 300-row image: three strips)', () => {
    let seed = 1;
    const random = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
    const a: Image8 = { width: 23, height: 300, channels: 1, data: Uint8Array.from({ length: 23 * 300 }, (_, i) => (i * 7 + (i >> 5)) % 256) };
    const b: Image8 = { ...a, data: a.data.map((v) => Math.max(0, Math.min(255, v + Math.round((random() - 0.5) * 40)))) };
    expect(ssim(a, b)).toBeCloseTo(ssimWhole(a, b), 12);
  });

  it('PSNR allocates nothing in proportion to the image (a 50-megapixel pair)', () => {
    const a: Image8 = { width: 10000, height: 5000, channels: 3, data: new Uint8Array(150e6) };
    const b: Image8 = { ...a, data: new Uint8Array(150e6).fill(3) };
    const before = process.memoryUsage().arrayBuffers;
    expect(psnr(a, b, { on: 'rgb' })).toBeCloseTo(10 * Math.log10(255 ** 2 / 9), 6);
    expect(psnr(a, b)).toBeCloseTo(10 * Math.log10(255 ** 2 / ((3 * 219) / 255) ** 2), 6);
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(1e6);
  });
});

describe('PSNR-B', () => {
  const flat = (w: number, h: number, v: (x: number, y: number) => number): Image8 => ({
    width: w,
    height: h,
    channels: 1,
    data: Uint8Array.from({ length: w * h }, (_, i) => v(i % w, Math.floor(i / w))),
  });

  it('adds the blocking effect factor of the test image to the MSE (worked example)', () => {
    // Four constant 8×8 blocks 100 110 / 90 100 against a flat 100: MSE 50; every boundary pair differs by 10
    // (D_B = 100), no other pair differs (D_B^c = 0); η = log2 8 / log2 16 = 3/4, so BEF = 75.
    const reference = flat(16, 16, () => 100);
    const blocky = flat(16, 16, (x, y) => [[100, 110], [90, 100]][y >> 3][x >> 3]);
    expect(psnrB(reference, blocky)).toBeCloseTo(10 * Math.log10((255 * 255) / (50 + 75)), 12);
    expect(psnr(reference, blocky)).toBeCloseTo(10 * Math.log10((255 * 255) / 50), 12);
  });

  it('equals PSNR when the test image is no blockier across the grid than inside it', () => {
    const reference = flat(24, 16, (x, y) => (x + y) * 5);
    const smooth = flat(24, 16, (x, y) => (x + y) * 5 + 2);
    expect(psnrB(reference, smooth)).toBeCloseTo(psnr(reference, smooth), 12);
  });

  it('on JPEG output, is below PSNR (JPEG is blocky) and measured on Y for colour', () => {
    const a = readPngRgb(golden('dists-lpips', 'images', 's64_ref.png'));
    const b = readPngRgb(golden('dists-lpips', 'images', 's64_jpeg_q15.png'));
    expect(psnrB(a, b)).toBeLessThan(psnr(a, b));
    expect(psnrB(a, b)).toBeGreaterThan(psnr(a, b) - 3);
    expect(psnrB(a, a)).toBe(Infinity);
  });
});

describe("on: 'y8' (Y rounded as MATLAB's rgb2ycbcr returns it for uint8)", () => {
  it('measures the rounded luma', () => {
    // Y of (10, 20, 30) = 16 + (654.81 + 2571.06 + 748.98)/255 = 31.587…, rounded 32; of (10, 20, 31): 31.685…, also 32.
    const a: Image8 = { width: 1, height: 1, channels: 3, data: Uint8Array.of(10, 20, 30) };
    const b: Image8 = { width: 1, height: 1, channels: 3, data: Uint8Array.of(10, 20, 31) };
    expect(psnr(a, b, { on: 'y8' })).toBe(Infinity);
    expect(psnr(a, b, { on: 'y' })).toBeCloseTo(10 * Math.log10(255 ** 2 / (24.966 / 255) ** 2), 9);
    expect(() => psnr(a, b, { on: 'x' as 'y' })).toThrow(/on must be 'y', 'y8' or 'rgb'/);
  });
});
