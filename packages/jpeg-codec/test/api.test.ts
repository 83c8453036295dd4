import { describe, expect, it } from 'vitest';
import {
  crop,
  decodeJpeg,
  degrade,
  doubleCompress,
  encodeJpeg,
  estimateQuality,
  JpegError,
  readJpegInfo,
  scaleQuantTable,
  STD_CHROMINANCE_QUANT,
  toGrey,
  STD_LUMINANCE_QUANT,
  type RawImage,
  type Subsampling,
} from '../src/index.js';
import { appSegment, splice } from './markers.js';
import { syntheticPhoto, toGray } from './synthetic.js';

const photo = syntheticPhoto(50, 34, 5);

function codeOf(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    if (e instanceof JpegError) return e.code;
    throw e;
  }
  return undefined;
}

describe('encodeJpeg options', () => {
  it('rejects invalid quality, subsampling, restart interval and images with INVALID_ARGUMENT', () => {
    for (const quality of [0, 101, 2.5, NaN]) expect(codeOf(() => encodeJpeg(photo, { quality }))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => encodeJpeg(photo, { subsampling: '4:2:1' as Subsampling }))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => encodeJpeg(photo, { restartInterval: -1 }))).toBe('INVALID_ARGUMENT');
    const bad: RawImage[] = [
      { ...photo, width: 0 },
      { ...photo, width: 70000, data: new Uint8Array(70000 * 34 * 3) },
      { ...photo, channels: 2 as 3 },
      { ...photo, data: photo.data.subarray(1) },
    ];
    for (const image of bad) expect(codeOf(() => encodeJpeg(image))).toBe('INVALID_ARGUMENT');
  });

  it('RGBA input ignores alpha (same bytes as RGB)', () => {
    const rgba = new Uint8ClampedArray(photo.width * photo.height * 4);
    for (let i = 0; i < photo.width * photo.height; i++) {
      rgba.set(photo.data.subarray(3 * i, 3 * i + 3), 4 * i);
      rgba[4 * i + 3] = i & 255;
    }
    expect(encodeJpeg({ ...photo, channels: 4, data: rgba })).toEqual(encodeJpeg(photo));
  });

  it('restart markers and optimized tables change bytes but not pixels', () => {
    const plain = decodeJpeg(encodeJpeg(photo, { quality: 60 })).data;
    const withRst = encodeJpeg(photo, { quality: 60, restartInterval: 3 });
    const optimized = encodeJpeg(photo, { quality: 60, optimizeHuffman: true });
    expect(decodeJpeg(withRst).data).toEqual(plain);
    expect(decodeJpeg(optimized).data).toEqual(plain);
    expect(optimized.length).toBeLessThan(encodeJpeg(photo, { quality: 60 }).length);
  });

  it('forceBaseline: false gives 16-bit tables and SOF1 at low quality', () => {
    const info = readJpegInfo(encodeJpeg(photo, { quality: 5, forceBaseline: false }));
    expect(info.frame).toBe('extended');
    expect(info.quantPrecisionBits).toEqual([16, 16]);
    expect(info.quality).toEqual({ quality: 5, exact: true });
  });

  it.each(['4:4:4', '4:2:2', '4:2:0', '4:4:0', '4:1:1'] as Subsampling[])('%s is reported back by readJpegInfo', (s) => {
    const info = readJpegInfo(encodeJpeg(photo, { subsampling: s, quality: 33 }));
    expect(info.subsampling).toBe(s);
    expect(info.quality).toEqual({ quality: 33, exact: true });
  });
});

describe('readJpegInfo', () => {
  it('reports EXIF orientation without rotating pixels', () => {
    const jpeg = encodeJpeg(photo);
    // Little-endian TIFF, IFD0 with one entry: Orientation (0x0112), SHORT, count 1, value 6.
    const tiff = [0x49, 0x49, 42, 0, 8, 0, 0, 0, 1, 0, 0x12, 0x01, 3, 0, 1, 0, 0, 0, 6, 0, 0, 0, 0, 0, 0, 0];
    const exif = appSegment(1, [...new TextEncoder().encode('Exif'), 0, 0, ...tiff]);
    const withExif = splice(jpeg, 20, 20, exif);
    expect(readJpegInfo(withExif).orientation).toBe(6);
    const decoded = decodeJpeg(withExif);
    expect([decoded.width, decoded.height]).toEqual([50, 34]);
    expect(decoded.data).toEqual(decodeJpeg(jpeg).data);
    expect(readJpegInfo(jpeg).orientation).toBeUndefined();
    // Broken EXIF is ignored, not an error.
    expect(readJpegInfo(splice(jpeg, 20, 20, appSegment(1, [...new TextEncoder().encode('Exif'), 0, 0, 0x49, 0x49, 42, 0, 0xff, 0xff, 0, 0]))).orientation).toBeUndefined();
  });

  it('ignores ICC profiles safely', () => {
    const jpeg = encodeJpeg(photo);
    const icc = appSegment(2, [...new TextEncoder().encode('ICC_PROFILE'), 0, 1, 1, ...new Uint8Array(300).fill(7)]);
    const withIcc = splice(jpeg, 20, 20, icc);
    expect(readJpegInfo(withIcc).hasIccProfile).toBe(true);
    expect(decodeJpeg(withIcc).data).toEqual(decodeJpeg(jpeg).data);
  });

  it('grayscale files', () => {
    const info = readJpegInfo(encodeJpeg(toGray(photo), { quality: 90 }));
    expect(info.colorSpace).toBe('grayscale');
    expect(info.subsampling).toBeNull();
    expect(info.quality).toEqual({ quality: 90, exact: true });
  });
});

describe('estimateQuality', () => {
  it('is exact for every IJG quality, clamped or not', () => {
    for (let q = 1; q <= 100; q++) {
      for (const baseline of [true, false]) {
        const l = scaleQuantTable(STD_LUMINANCE_QUANT, q, baseline);
        const c = scaleQuantTable(STD_CHROMINANCE_QUANT, q, baseline);
        const est = estimateQuality(l, c);
        expect(est.exact).toBe(true);
        // Where two qualities share tables the lowest is reported; its tables must be the same ones.
        expect(scaleQuantTable(STD_LUMINANCE_QUANT, est.quality, baseline)).toEqual(l);
      }
    }
  });

  it('gives a close, non-exact estimate for tables that are not IJG-scaled', () => {
    const l = scaleQuantTable(STD_LUMINANCE_QUANT, 70, true).map((v, i) => (i % 3 === 0 ? v + 1 : v));
    const c = scaleQuantTable(STD_CHROMINANCE_QUANT, 70, true);
    const est = estimateQuality(Uint16Array.from(l), c);
    expect(est.exact).toBe(false);
    expect(Math.abs(est.quality - 70)).toBeLessThanOrEqual(3);
  });
});

describe('degradation API', () => {
  it('degrade = encode + decode; RGBA in gives RGB, gray stays gray', () => {
    const out = degrade(photo, { quality: 10 });
    expect(out.data).toEqual(decodeJpeg(encodeJpeg(photo, { quality: 10 })).data);
    const gray = degrade(toGray(photo), { quality: 10 });
    expect(gray.channels).toBe(1);
    expect(gray.data.length).toBe(50 * 34);
  });

  it('lower quality loses more', () => {
    const mse = (a: RawImage) => Array.from(a.data).reduce((s, v, i) => s + (v - photo.data[i]) ** 2, 0) / a.data.length;
    expect(mse(degrade(photo, { quality: 10 }))).toBeGreaterThan(mse(degrade(photo, { quality: 90 })) * 3);
  });

  it('doubleCompress crops then recompresses, and validates shift', () => {
    const out = doubleCompress(photo, 30, 80, { shift: 4 });
    expect([out.width, out.height]).toEqual([46, 30]);
    const manual = degrade(crop(degrade(photo, { quality: 30 }), 4, 4, 46, 30), { quality: 80 });
    expect(out.data).toEqual(manual.data);
    for (const shift of [-1, 1.5, 34]) expect(codeOf(() => doubleCompress(photo, 30, 80, { shift }))).toBe('INVALID_ARGUMENT');
  });

  it('toGrey is BT.601 luma as libjpeg and PIL round it, ignores alpha, and keeps a grey image', () => {
    const pixel = (rgb: number[], channels: 3 | 4 = 3) => toGrey({ width: 1, height: 1, channels, data: Uint8Array.from(rgb) }).data[0];
    // PIL: Image.new('RGB', (1, 1), c).convert('L').getpixel((0, 0)) for red, green, blue, white, black.
    expect([[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255], [0, 0, 0]].map((c) => pixel(c))).toEqual([76, 150, 29, 255, 0]);
    expect(pixel([255, 0, 0, 7], 4)).toBe(76);
    let seed = 5;
    const next = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % 256;
    for (let i = 0; i < 2000; i++) {
      const [r, g, b] = [next(), next(), next()];
      const y = 0.299 * r + 0.587 * g + 0.114 * b;
      if (Math.abs((y % 1) - 0.5) > 1e-3) expect(pixel([r, g, b]), `${r}, ${g}, ${b}`).toBe(Math.round(y));
    }
    const grey = { width: 2, height: 1, channels: 1 as const, data: Uint8Array.from([3, 4]) };
    expect(toGrey(grey)).toBe(grey);
    const g = toGrey(photo);
    expect([g.width, g.height, g.channels, g.data.length]).toEqual([photo.width, photo.height, 1, photo.width * photo.height]);
  });

  it('crop validates its window', () => {
    expect(crop(photo, 49, 33, 1, 1).data).toEqual(photo.data.subarray((33 * 50 + 49) * 3, (33 * 50 + 50) * 3));
    expect(codeOf(() => crop(photo, 45, 0, 6, 1))).toBe('INVALID_ARGUMENT');
  });
});
