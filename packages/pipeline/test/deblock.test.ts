import { readImageFile } from '@codiff/image-io/node';
import { crop, degrade, toGrey } from '@codiff/jpeg-codec';
import { psnr, psnrB } from '@codiff/metrics';
import { describe, expect, it } from 'vitest';
import { sharedPhotos } from '../../../test-support/golden.js';
import { blockEdgeRatio, PipelineError, smoothBlockEdges, type Pixels } from '../src/index.js';

describe('block-edge smoothing', () => {
  it('moves the two pixels beside an edge by s·Δ/3 each, Δ the step beyond its neighbours’ (flat blocks: s = 1)', () => {
    // 16×16 grey: 100 left of column 8, 140 from it. Flat blocks, so every step sits on the grid.
    const data = Uint8Array.from({ length: 256 }, (_, i) => (i % 16 < 8 ? 100 : 140));
    const { image, strength, grid } = smoothBlockEdges({ width: 16, height: 16, channels: 1, data }, { top: 0, left: 0 });
    expect([strength, grid]).toEqual([1, { top: 0, left: 0 }]);
    // Δ = 40 − (0 + 0) / 2: column 7 becomes 100 + 40/3, column 8 140 − 40/3; nothing else moves.
    const expected = Array.from({ length: 16 }, (_, x) => (x === 7 ? 113 : x === 8 ? 127 : x < 8 ? 100 : 140));
    for (let row = 0; row < 16; row++) expect([...image.data.subarray(row * 16, row * 16 + 16)]).toEqual(expected);
  });

  it('works on the grid it is given: a JPEG cropped by 3 rows and 5 columns has its edges at rows 5 and columns 3 mod 8', async () => {
    const photo = await readImageFile(sharedPhotos('val', 'val20_001.png'));
    const cut = <T extends Pixels>(image: T) => crop(image, 5, 3, image.width - 5, image.height - 3) as Pixels;
    const [original, jpeg] = [cut(photo), cut(degrade(photo, { quality: 10 }) as Pixels)];
    const shifted = smoothBlockEdges(jpeg, { top: 5, left: 3 });
    expect(shifted.strength).toBeGreaterThan(0.2);
    expect(psnr(original, shifted.image, { on: 'y8' })).toBeGreaterThan(psnr(original, jpeg, { on: 'y8' }) + 0.1);
    // The aligned grid runs through the middle of these blocks, where there are no steps to take down.
    expect(smoothBlockEdges(jpeg).strength).toBe(0);
  });

  it('on a QF-10 JPEG: blocking down to the level inside blocks, PSNR-B up by more than a dB, PSNR-Y not down', async () => {
    const photo = await readImageFile(sharedPhotos('val', 'val20_001.png'));
    const grid = { top: 0, left: 0 };
    // An uncompressed photo has no excess at the grid: it comes back as it was.
    expect(blockEdgeRatio(photo, grid)).toBeLessThan(1);
    const untouched = smoothBlockEdges(photo, grid);
    expect([untouched.strength, untouched.image]).toEqual([0, photo]);

    const jpeg = degrade(photo, { quality: 10 }) as Pixels;
    expect(blockEdgeRatio(jpeg, grid)).toBeGreaterThan(2);
    const { image, strength } = smoothBlockEdges(jpeg, grid);
    expect(strength).toBeGreaterThan(0);
    expect(strength).toBeLessThanOrEqual(1);
    // Bisected to a hundredth on unrounded luma; rounding to 8 bits leaves it within a few per cent of 1.
    expect(blockEdgeRatio(image, grid)).toBeLessThan(1.05);
    const on = { on: 'y8' } as const;
    expect(psnrB(photo, image, on)).toBeGreaterThan(psnrB(photo, jpeg, on) + 1);
    expect(psnr(photo, image, on)).toBeGreaterThan(psnr(photo, jpeg, on));
  });

  it('filters every channel alike: a grey image as three equal channels comes back as the grey result', async () => {
    const grey = toGrey(degrade(await readImageFile(sharedPhotos('val', 'val20_002.png')), { quality: 10 }));
    const rgb: Pixels = { ...grey, channels: 3, data: Uint8Array.from({ length: grey.data.length * 3 }, (_, i) => grey.data[Math.floor(i / 3)]) };
    const [a, b] = [smoothBlockEdges(grey as Pixels, { top: 0, left: 0 }), smoothBlockEdges(rgb, { top: 0, left: 0 })];
    expect(a.strength).toBeGreaterThan(0);
    expect(b.strength).toBeCloseTo(a.strength, 9);
    expect(b.image.data.filter((_, i) => i % 3 === 0)).toEqual(a.image.data);
  });

  it('names a bad grid or buffer', () => {
    const image: Pixels = { width: 16, height: 16, channels: 1, data: new Uint8Array(256) };
    expect(() => smoothBlockEdges(image, { top: 8, left: 0 })).toThrow(PipelineError);
    expect(() => smoothBlockEdges(image, { top: 0, left: 1.5 })).toThrow(/grid left must be an integer 0..7 \(got 1.5\)/);
    expect(() => smoothBlockEdges({ ...image, data: new Uint8Array(10) }, { top: 0, left: 0 })).toThrow(/does not hold 16×16×1/);
  });
});
