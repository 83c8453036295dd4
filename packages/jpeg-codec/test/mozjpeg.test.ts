import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import encodeMozjpeg, { init as initMozjpeg } from '@jsquash/jpeg/encode.js';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { decodeJpeg, readJpegInfo, type RawImage } from '../src/index.js';
import { firstDifference } from './golden.js';
import { djpeg, hasLibjpegTools } from './libjpeg-tools.js';
import { syntheticPhoto } from './synthetic.js';

// Progressive files from mozjpeg (trellis quantisation, optimized scans) through two independent builds: sharp's
// bundled libvips and Squoosh's wasm. References: sharp's own decode, and djpeg where installed.

const SIZES: [number, number][] = [[1, 1], [2, 7], [13, 11], [64, 48], [101, 67]];

function toRgba(image: RawImage): Uint8ClampedArray<ArrayBuffer> {
  const rgba = new Uint8ClampedArray(image.width * image.height * 4);
  for (let i = 0; i < image.width * image.height; i++) {
    rgba.set(image.data.subarray(i * 3, i * 3 + 3), i * 4);
    rgba[i * 4 + 3] = 255;
  }
  return rgba;
}

async function sharpDecode(jpeg: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await sharp(jpeg).removeAlpha().toColourspace('srgb').raw().toBuffer());
}

async function expectSameAsReferences(jpeg: Uint8Array): Promise<void> {
  const ours = decodeJpeg(jpeg);
  expect(firstDifference(ours.data, await sharpDecode(jpeg))).toBe(-1);
  if (hasLibjpegTools) expect(firstDifference(ours.data, djpeg(jpeg).data)).toBe(-1);
}

describe('decodes mozjpeg files made by sharp', () => {
  const cases = SIZES.flatMap(([w, h], i) =>
    (['4:2:0', '4:4:4'] as const).flatMap((s) => [15, 60, 95].map((q) => [w, h, s, q, i] as const)),
  );
  it.each(cases)('%i×%i %s q%i progressive', async (w, h, s, q, i) => {
    const image = syntheticPhoto(w, h, 300 + i);
    const jpeg = new Uint8Array(
      await sharp(Buffer.from(image.data), { raw: { width: w, height: h, channels: 3 } })
        .jpeg({ quality: q, progressive: true, mozjpeg: true, chromaSubsampling: s })
        .toBuffer(),
    );
    const info = readJpegInfo(jpeg);
    expect(info.frame).toBe('progressive');
    expect(info.scans).toBeGreaterThan(1);
    await expectSameAsReferences(jpeg);
  });
});

describe('decodes mozjpeg files made by @jsquash/jpeg (wasm)', () => {
  beforeAll(async () => {
    const require = createRequire(import.meta.url);
    const wasmPath = require.resolve('@jsquash/jpeg/codec/enc/mozjpeg_enc.wasm');
    await initMozjpeg(await WebAssembly.compile(readFileSync(wasmPath)));
  });
  const encode = async (image: RawImage, options: Record<string, unknown>) =>
    new Uint8Array(
      await encodeMozjpeg({ data: toRgba(image), width: image.width, height: image.height, colorSpace: 'srgb' }, options),
    );

  it.each(SIZES)('%i×%i progressive and baseline, 4:2:0 and 4:4:4', async (w, h) => {
    const image = syntheticPhoto(w, h, 400 + w);
    for (const quality of [10, 75]) {
      for (const chroma_subsample of [1, 2]) {
        for (const progressive of [true, false]) {
          const jpeg = await encode(image, { quality, progressive, chroma_subsample, auto_subsample: false, baseline: !progressive });
          expect(readJpegInfo(jpeg).frame).toBe(progressive ? 'progressive' : 'baseline');
          await expectSameAsReferences(jpeg);
        }
      }
    }
  });
});
