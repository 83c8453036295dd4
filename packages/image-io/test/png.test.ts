import { readFileSync } from 'node:fs';
import { deflateSync } from 'node:zlib';
import { PNG } from 'pngjs';
import sharp, { type PngOptions, type Sharp } from 'sharp';
import { describe, expect, it } from 'vitest';
import { sharedPhotos } from '../../../test-support/golden.js';
import { decodeImage, encodePng, ImageIoError, readImageHeader, type DecodedImage } from '../src/index.js';

const photo = (path: string) => new Uint8Array(readFileSync(sharedPhotos(path)));

/** pngjs's decoding (the reference) in our convention: grey stays one channel, alpha is dropped. */
function referenceDecode(bytes: Uint8Array, grey: boolean): { width: number; height: number; data: Uint8Array } {
  const png = PNG.sync.read(Buffer.from(bytes));
  const channels = grey ? 1 : 3;
  const data = new Uint8Array(png.width * png.height * channels);
  for (let i = 0; i < png.width * png.height; i++) for (let c = 0; c < channels; c++) data[i * channels + c] = png.data[4 * i + c];
  return { width: png.width, height: png.height, data };
}

function expectSameAsReference(got: DecodedImage, bytes: Uint8Array, grey: boolean) {
  const want = referenceDecode(bytes, grey);
  expect([got.width, got.height, got.channels]).toEqual([want.width, want.height, grey ? 1 : 3]);
  expect(Buffer.from(got.data).equals(Buffer.from(want.data))).toBe(true);
}

/** An IHDR-only PNG header with a few bytes of IDAT: enough for the header checks. */
function headerOnlyPng(width: number, height: number, colorType = 2): Uint8Array {
  const png = encodePng({ width: 1, height: 1, channels: 3, data: new Uint8Array(3) });
  const view = new DataView(png.buffer);
  view.setUint32(16, width);
  view.setUint32(20, height);
  png[25] = colorType;
  // Recompute the IHDR CRC so only the size is unusual.
  return fixCrc(png, 8);
}

function fixCrc(png: Uint8Array, chunkAt: number): Uint8Array {
  const view = new DataView(png.buffer, png.byteOffset);
  const length = view.getUint32(chunkAt);
  let c = 0xffffffff;
  for (let i = chunkAt + 4; i < chunkAt + 8 + length; i++) {
    c ^= png[i];
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  }
  view.setUint32(chunkAt + 8 + length, (c ^ 0xffffffff) >>> 0);
  return png;
}

describe('PNG decoding equals pngjs', () => {
  it('reads the shared photos: RGB (McMaster) and 8-bit grey (Classic5)', () => {
    for (const [path, grey] of [['test/McMaster/1.png', false], ['test/Classic5/barbara.png', true]] as const) {
      const bytes = photo(path);
      expectSameAsReference(decodeImage(bytes), bytes, grey);
    }
  });

  it('reads every colour type, bit depth, palette and interlacing libpng writes (via sharp)', async () => {
    const source = sharp(Buffer.from(photo('test/Kodak-nonLIVE1/kodim07.png'))).extract({ left: 100, top: 50, width: 61, height: 37 });
    const variants: [string, Sharp, boolean][] = [
      ['rgb interlaced', source.clone().png({ progressive: true }), false],
      ['rgba', source.clone().ensureAlpha(0.5).png(), false],
      ['rgba interlaced', source.clone().ensureAlpha(0.5).png({ progressive: true }), false],
      ['rgb 16-bit', source.clone().toColourspace('rgb16').png(), false],
      ['rgb 16-bit interlaced', source.clone().toColourspace('rgb16').png({ progressive: true }), false],
      ['grey 16-bit', source.clone().toColourspace('grey16').png(), true],
      ['grey + alpha', source.clone().toColourspace('b-w').ensureAlpha(0.3).png(), true],
      ['grey interlaced', source.clone().toColourspace('b-w').png({ progressive: true }), true],
      ['palette 8-bit', source.clone().png({ palette: true, colours: 200 }), false],
      ['palette 4-bit', source.clone().png({ palette: true, colours: 16, bitdepth: 4 } as PngOptions), false],
      ['palette 2-bit interlaced', source.clone().png({ palette: true, colours: 4, bitdepth: 2, progressive: true } as PngOptions), false],
      ['palette 1-bit', source.clone().png({ palette: true, colours: 2, bitdepth: 1 } as PngOptions), false],
    ];
    const seen = new Set<string>();
    for (const [name, pipeline, grey] of variants) {
      const bytes = new Uint8Array(await pipeline.toBuffer());
      const header = readImageHeader(bytes);
      seen.add(`${bytes[25]}/${bytes[24]}/${bytes[28]}`);
      expect(header, name).toMatchObject({ format: 'png', width: 61, height: 37, channels: grey ? 1 : 3 });
      expectSameAsReference(decodeImage(bytes), bytes, grey);
    }
    // colour type / bit depth / interlace combinations really exercised
    expect(seen.size).toBeGreaterThanOrEqual(10);
  });

  it('expands grey to RGB on request', () => {
    const bytes = photo('test/Classic5/lena.png');
    const rgb = decodeImage(bytes, { channels: 'rgb' });
    const grey = decodeImage(bytes);
    expect(rgb.channels).toBe(3);
    for (const i of [0, 1000, 262143]) expect([rgb.data[3 * i], rgb.data[3 * i + 1], rgb.data[3 * i + 2]]).toEqual([grey.data[i], grey.data[i], grey.data[i]]);
  });
});

describe('PNG encoding', () => {
  it('round-trips grey, RGB and RGBA through pngjs and through our decoder', () => {
    const rgb = decodeImage(photo('test/McMaster/3.png'));
    const grey = decodeImage(photo('test/Classic5/boats.png'));
    const rgba = { width: 5, height: 3, channels: 4 as const, data: Uint8Array.from({ length: 60 }, (_, i) => (i * 37) % 256) };
    for (const image of [rgb, grey, rgba]) {
      const png = encodePng(image);
      const ref = PNG.sync.read(Buffer.from(png));
      for (let i = 0; i < image.width * image.height; i++) {
        for (let c = 0; c < image.channels; c++) {
          if (ref.data[4 * i + (image.channels === 1 ? 0 : c)] !== image.data[i * image.channels + c]) throw new Error(`pixel ${i} differs`);
        }
      }
      if (image.channels !== 4) expect(Buffer.from(decodeImage(png).data).equals(Buffer.from(image.data))).toBe(true);
    }
  });
});

describe('hostile and broken PNGs', () => {
  it('refuses a 20000×20000 header before inflating anything', () => {
    const start = performance.now();
    let error: unknown;
    try {
      decodeImage(headerOnlyPng(20000, 20000));
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ImageIoError);
    expect((error as ImageIoError).code).toBe('TOO_LARGE');
    expect((error as Error).message).toBe('the PNG is 20000×20000 = 400000000 pixels, over the limit of 100000000');
    expect(performance.now() - start).toBeLessThan(50);
    expect(() => readImageHeader(headerOnlyPng(2000, 2000), { maxPixels: 1000 })).toThrow(/over the limit of 1000/);
  });

  it('never inflates past the size the header implies (a deflate bomb behind a small header)', () => {
    // 100×100 RGB header, but the IDAT inflates to 200 MB of zeros.
    const bomb = encodePng({ width: 100, height: 100, channels: 3, data: new Uint8Array(30000) });
    const idat = deflateSync(new Uint8Array(200e6), { level: 9 });
    const out = new Uint8Array(33 + 12 + idat.length + 12);
    out.set(bomb.subarray(0, 33));
    const view = new DataView(out.buffer);
    view.setUint32(33, idat.length);
    out.set([0x49, 0x44, 0x41, 0x54], 37);
    out.set(idat, 41);
    fixCrc(out, 33);
    out.set(bomb.subarray(bomb.length - 12), 45 + idat.length);
    const before = process.memoryUsage().arrayBuffers;
    const image = decodeImage(out);
    expect(image.width * image.height).toBe(10000);
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(50e6);
  });

  it('reports damage in plain words, as ImageIoError codes', () => {
    const good = encodePng({ width: 40, height: 30, channels: 3, data: Uint8Array.from({ length: 3600 }, (_, i) => i % 251) });
    const badCrc = good.slice();
    badCrc[good.length - 20] ^= 0xff;
    const badFilter = (() => {
      const raw = new Uint8Array(30 * 121);
      raw[0] = 7;
      const idat = deflateSync(raw);
      const png = new Uint8Array(33 + 12 + idat.length + 12);
      png.set(good.subarray(0, 33));
      new DataView(png.buffer).setUint32(33, idat.length);
      png.set([0x49, 0x44, 0x41, 0x54], 37);
      png.set(idat, 41);
      fixCrc(png, 33);
      png.set(good.subarray(good.length - 12), 45 + idat.length);
      return png;
    })();
    const cases: [Uint8Array, string, RegExp][] = [
      [good.subarray(0, 20), 'TRUNCATED', /ends before its header/],
      [good.subarray(0, good.length - 30), 'TRUNCATED', /ends inside its IDAT chunk/],
      [badCrc, 'CORRUPT', /checksum mismatch in its IDAT chunk/],
      [badFilter, 'CORRUPT', /unknown row filter 7/],
      [Uint8Array.from([...good.subarray(0, 33), ...good.subarray(good.length - 12)]), 'CORRUPT', /has no image data \(IDAT\)/],
      [headerOnlyPng(10, 10, 5), 'UNSUPPORTED', /colour type 5/],
      [new TextEncoder().encode('GIF89a.....'), 'NOT_AN_IMAGE', /not a PNG or JPEG/],
    ];
    for (const [bytes, code, message] of cases) {
      let error: unknown;
      try {
        decodeImage(bytes);
      } catch (e) {
        error = e;
      }
      expect(error, String(message)).toBeInstanceOf(ImageIoError);
      expect((error as ImageIoError).code).toBe(code);
      expect((error as Error).message).toMatch(message);
    }
  });

  it('never throws anything but ImageIoError on mutated files (CRCs fixed up, so the damage reaches the decoder)', async () => {
    const crop = sharp(Buffer.from(photo('test/Kodak-nonLIVE1/kodim12.png'))).extract({ left: 0, top: 0, width: 33, height: 17 });
    const originals = [
      new Uint8Array(await crop.clone().png().toBuffer()),
      new Uint8Array(await crop.clone().png({ palette: true, colours: 16, bitdepth: 4, progressive: true } as PngOptions).toBuffer()),
    ];
    let seed = 7;
    const random = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
    let decoded = 0;
    for (const original of originals) {
      for (let i = 0; i < 400; i++) {
        const bytes = original.slice();
        for (let k = 0; k < 1 + Math.floor(random() * 3); k++) bytes[8 + Math.floor(random() * (bytes.length - 8))] = Math.floor(random() * 256);
        for (let at = 8; at + 12 <= bytes.length; ) {
          const length = new DataView(bytes.buffer).getUint32(at);
          if (at + 12 + length > bytes.length) break;
          fixCrc(bytes, at);
          at += 12 + length;
        }
        try {
          decodeImage(bytes, { maxPixels: 1e6 });
          decoded++;
        } catch (e) {
          expect(e, String(e)).toBeInstanceOf(ImageIoError);
        }
      }
    }
    expect(decoded).toBeGreaterThan(0);
  });
});
