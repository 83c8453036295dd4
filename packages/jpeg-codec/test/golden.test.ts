import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  decodeJpeg,
  doubleCompress,
  encodeJpeg,
  readJpegInfo,
  scaleQuantTable,
  STD_CHROMINANCE_QUANT,
  STD_LUMINANCE_QUANT,
} from '../src/index.js';
import { encodingCases, firstDifference, goldenImage, JPEG_DIR, manifest, readGolden, sha256 } from './golden.js';
import { readPngRgb } from '../../../test-support/golden.js';

describe('encoder matches libjpeg-turbo byte for byte (../shared/golden/jpeg)', () => {
  it('covers every image × QF × encoder in the manifest', () => {
    expect(encodingCases.length).toBe(3 * 9 * 4);
  });
  it.each(encodingCases.map((c) => [`${c.image}/${c.key}`, c] as const))('%s', (_, c) => {
    const expected = readGolden(c.jpeg);
    expect(sha256(expected)).toBe(c.sha256);
    // Plain cjpeg keeps 16-bit tables at low quality (SOF1); PIL, OpenCV and cjpeg -baseline clamp to 255.
    const ours = encodeJpeg(goldenImage(c.image), { quality: c.quality, forceBaseline: c.encoder !== 'cjpeg' });
    expect(firstDifference(ours, expected)).toBe(-1);
  });
});

describe('decoder matches djpeg / PIL / OpenCV pixel for pixel', () => {
  it.each(encodingCases.map((c) => [`${c.image}/${c.key}`, c] as const))('%s', (_, c) => {
    const decoded = decodeJpeg(readGolden(c.jpeg));
    const ref = readPngRgb(join(JPEG_DIR, c.decodedPng));
    expect([decoded.width, decoded.height, decoded.channels]).toEqual([ref.width, ref.height, 3]);
    expect(sha256(decoded.data)).toBe(c.decodedSha256);
    expect(firstDifference(decoded.data, ref.data)).toBe(-1);
  });
});

const doubleCases = Object.entries<any>(manifest.double_compression.cases);

describe('double compression matches PIL (aligned, crop8, crop4)', () => {
  it('has the 27 cases', () => expect(doubleCases.length).toBe(27));
  it.each(doubleCases)('%s', (name, c) => {
    const image = goldenImage(name.split('/')[0]);
    const [, q1, q2] = /q(\d+)_q(\d+)/.exec(name)!.map(Number);
    const result = doubleCompress(image, q1!, q2!, { shift: c.crop_rows_cols });
    expect([result.height, result.width]).toEqual(c.second_input_shape_hw);
    expect(sha256(result.data)).toBe(c.second_decoded_rgb_sha256);
    // The second JPEG itself is also reproduced exactly.
    const first = decodeJpeg(encodeJpeg(image, { quality: q1 }));
    expect(sha256(first.data)).toBe(c.first_decoded_rgb_sha256);
    expect(sha256(decodeJpeg(readGolden(c.second_jpeg)).data)).toBe(c.second_decoded_rgb_sha256);
    expect(firstDifference(result.data, readPngRgb(join(JPEG_DIR, c.second_decoded_png)).data)).toBe(-1);
  });
});

describe('quantisation tables and quality estimate', () => {
  const tables = manifest.quant_tables_natural_w128_h128.tables as Record<string, Record<string, Record<string, any>>>;
  it.each(Object.keys(tables))('%s tables equal IJG scaling', (encoder) => {
    for (const [q, byId] of Object.entries(tables[encoder])) {
      const baseline = encoder !== 'cjpeg';
      expect(Array.from(scaleQuantTable(STD_LUMINANCE_QUANT, Number(q), baseline))).toEqual(byId['0'].natural);
      expect(Array.from(scaleQuantTable(STD_CHROMINANCE_QUANT, Number(q), baseline))).toEqual(byId['1'].natural);
    }
  });
  it.each(encodingCases.map((c) => [`${c.image}/${c.key}`, c] as const))('reads tables and exact QF of %s', (_, c) => {
    const info = readJpegInfo(readGolden(c.jpeg));
    const expected = manifest.encodings[c.image][c.key];
    expect(info.width).toBe(expected.sof.width);
    expect(info.height).toBe(expected.sof.height);
    expect(info.frame).toBe(expected.sof.marker === 'SOF0' ? 'baseline' : 'extended');
    expect(info.subsampling).toBe('4:2:0');
    expect(info.colorSpace).toBe('ycbcr');
    expect(info.jfif).toBe(true);
    expect(info.quantPrecisionBits[0]).toBe(expected.qtable_precision_bits['0']);
    expect(info.quality).toEqual({ quality: c.quality, exact: true });
  });
});
