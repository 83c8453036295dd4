import { mkdirSync, copyFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crop, degrade, toGrey } from '@codiff/jpeg-codec';
import { describe, expect, it } from 'vitest';
import { readPngRgb, sharedPhotos } from '../../../test-support/golden.js';
import { dihedral, drawRecipe, makePair, Rng } from '../src/index.js';
import { PairLoader, scanPhotoFolder } from '../src/node.js';

/** Whether every pixel of interleaved RGB bytes has R = G = B. */
const allGrey = (rgb: Uint8Array | Float32Array) => rgb.every((v, i) => i % 3 !== 0 || (v === rgb[i + 1] && v === rgb[i + 2]));

describe('grey training samples (not in the official data)', () => {
  it('a grey recipe pairs the crop’s luma with its grey JPEG, both as three equal channels, on the same grid', () => {
    const photo = readPngRgb(sharedPhotos('train', 't91_t37.png'));
    const recipe = { top: 5, left: 11, mode: 3, quality: 10, shiftTop: 2, shiftLeft: 6 };
    const grey = makePair(photo, { ...recipe, grey: true }, 64);
    const colour = makePair(photo, recipe, 64);
    expect(allGrey(grey.hq) && allGrey(grey.lq)).toBe(true);
    expect(allGrey(colour.hq)).toBe(false);
    // The same pipeline by hand: crop, dihedral, luma, a one-channel JPEG of the whole crop, final crop.
    const luma = toGrey(dihedral(crop(photo, 11, 5, 72, 72), 3));
    const jpeg = degrade(luma, { quality: 10 });
    expect(jpeg.channels).toBe(1);
    const channel = (rgb: Uint8Array) => rgb.filter((_, i) => i % 3 === 0);
    expect(channel(grey.hq)).toEqual(crop(luma, 6, 2, 64, 64).data);
    expect(channel(grey.lq)).toEqual(crop(jpeg, 6, 2, 64, 64).data);
    expect(grey.gridShift).toEqual(colour.gridShift);
  });

  it('greyFraction draws after the official fields, so they stay as drawn without it', () => {
    let greys = 0;
    const n = 4000;
    for (let i = 0; i < n; i++) {
      const { grey, ...official } = drawRecipe(Rng.derive(9, i), 300, 200, 64, 0.3);
      expect(official).toEqual(drawRecipe(Rng.derive(9, i), 300, 200, 64));
      greys += grey ? 1 : 0;
    }
    expect(greys / n).toBeCloseTo(0.3, 1);
    expect('grey' in drawRecipe(new Rng(1), 300, 200, 64)).toBe(false);
  });

  it('the loader makes the configured share grey', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'codiff-grey-')), 'photos');
    mkdirSync(dir);
    for (const name of ['t91_t37.png', 't91_t40.png']) copyFileSync(sharedPhotos('train', name), join(dir, name));
    const { photos } = await scanPhotoFolder(dir, 72);
    const greyShare = async (greyFraction: number) => {
      const loader = new PairLoader({ photos, patch: 64, batchSize: 8, seed: 3, greyFraction, workers: 1 });
      try {
        const b = await loader.batch(0);
        const size = 64 * 64 * 3;
        return Array.from({ length: b.size }, (_, i) => allGrey(b.hq.subarray(i * size, (i + 1) * size))).filter(Boolean).length / b.size;
      } finally {
        await loader.close();
      }
    };
    expect(await greyShare(1)).toBe(1);
    expect(await greyShare(0)).toBe(0);
  }, 60_000);
});
