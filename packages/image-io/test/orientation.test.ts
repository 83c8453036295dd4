import { readFileSync } from 'node:fs';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { sharedPhotos } from '../../../test-support/golden.js';
import { decodeImage, orient } from '../src/index.js';

describe('EXIF orientation', () => {
  it('turns a 3×2 image as each of the eight orientations prescribes', () => {
    // a b c
    // d e f
    const image = { width: 3, height: 2, channels: 1 as const, data: Uint8Array.from('abcdef', (ch) => ch.charCodeAt(0)) };
    const shown = (o: number) => {
      const r = orient(image, o);
      const rows = [];
      for (let y = 0; y < r.height; y++) rows.push(String.fromCharCode(...r.data.subarray(y * r.width, (y + 1) * r.width)));
      return rows.join('/');
    };
    expect([1, 2, 3, 4, 5, 6, 7, 8].map(shown)).toEqual(['abc/def', 'cba/fed', 'fed/cba', 'def/abc', 'ad/be/cf', 'da/eb/fc', 'fc/eb/da', 'cf/be/ad']);
  });

  it('decodes JPEGs upright as libvips does (sharp .rotate()) for every orientation', async () => {
    const photo = readFileSync(sharedPhotos('test/Kodak-nonLIVE1/kodim15.png'));
    const crop = sharp(photo).extract({ left: 200, top: 100, width: 48, height: 32 });
    for (let orientation = 1; orientation <= 8; orientation++) {
      const jpeg = new Uint8Array(await crop.clone().jpeg({ quality: 90 }).withMetadata({ orientation }).toBuffer());
      const upright = await sharp(Buffer.from(jpeg)).rotate().raw().toBuffer({ resolveWithObject: true });
      const ours = decodeImage(jpeg, { orient: true });
      expect([ours.width, ours.height], `orientation ${orientation}`).toEqual([upright.info.width, upright.info.height]);
      expect(Buffer.from(ours.data).equals(upright.data), `orientation ${orientation}`).toBe(true);
      expect(decodeImage(jpeg).width).toBe(48);
    }
  });
});
