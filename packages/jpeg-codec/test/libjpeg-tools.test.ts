import { describe, expect, it } from 'vitest';
import { decodeJpeg, encodeJpeg, readJpegInfo, type Subsampling } from '../src/index.js';
import { firstDifference } from './golden.js';
import { cjpeg, djpeg, hasLibjpegTools } from './libjpeg-tools.js';
import { syntheticPhoto, toGray } from './synthetic.js';

const SAMPLE_ARG: Record<Subsampling, string> = {
  '4:4:4': '1x1', '4:2:2': '2x1', '4:2:0': '2x2', '4:4:0': '1x2', '4:1:1': '4x1',
};
const SIZES: [number, number][] = [[1, 1], [3, 2], [5, 19], [17, 9], [33, 31], [40, 24], [71, 45]];
const SUBSAMPLINGS = Object.keys(SAMPLE_ARG) as Subsampling[];

if (!hasLibjpegTools) {
  console.warn('cjpeg/djpeg not found: install Debian libjpeg-turbo-progs to run the libjpeg cross-checks');
}

describe.skipIf(!hasLibjpegTools)('encoder equals Debian cjpeg (libjpeg-turbo)', () => {
  const cases = SIZES.flatMap(([w, h], i) => SUBSAMPLINGS.flatMap((s) => [7, 50, 93].map((q) => [w, h, s, q, i] as const)));
  it.each(cases)('%i×%i %s q%i', (w, h, s, q, i) => {
    const image = syntheticPhoto(w, h, 100 + i);
    const expected = cjpeg(image, ['-quality', String(q), '-sample', SAMPLE_ARG[s], '-baseline']);
    expect(firstDifference(encodeJpeg(image, { quality: q, subsampling: s }), expected)).toBe(-1);
  });

  it.each(SIZES)('grayscale %i×%i from gray and from RGB input', (w, h) => {
    const rgb = syntheticPhoto(w, h, 7);
    for (const q of [3, 75, 100]) {
      const fromRgb = cjpeg(rgb, ['-quality', String(q), '-grayscale', '-baseline']);
      expect(firstDifference(encodeJpeg(rgb, { quality: q, grayscale: true }), fromRgb)).toBe(-1);
      const gray = toGray(rgb);
      const fromGray = cjpeg(gray, ['-quality', String(q), '-baseline']);
      expect(firstDifference(encodeJpeg(gray, { quality: q }), fromGray)).toBe(-1);
    }
  });

  it.each([[64, 48], [37, 53], [1, 1], [200, 9]])('optimized Huffman tables %i×%i (cjpeg -optimize)', (w, h) => {
    const image = syntheticPhoto(w, h, 11);
    for (const s of ['4:2:0', '4:4:4'] as Subsampling[]) {
      for (const q of [10, 90]) {
        const expected = cjpeg(image, ['-quality', String(q), '-sample', SAMPLE_ARG[s], '-optimize', '-baseline']);
        expect(firstDifference(encodeJpeg(image, { quality: q, subsampling: s, optimizeHuffman: true }), expected)).toBe(-1);
      }
    }
    const gray = toGray(image);
    expect(firstDifference(encodeJpeg(gray, { quality: 60, optimizeHuffman: true }), cjpeg(gray, ['-quality', '60', '-optimize']))).toBe(-1);
  });

  it.each([1, 2, 5, 7])('restart interval of %i MCUs (cjpeg -restart NB)', (n) => {
    const image = syntheticPhoto(83, 61, n);
    for (const s of ['4:2:0', '4:2:2'] as Subsampling[]) {
      const expected = cjpeg(image, ['-quality', '80', '-sample', SAMPLE_ARG[s], '-restart', `${n}B`]);
      const ours = encodeJpeg(image, { quality: 80, subsampling: s, restartInterval: n });
      expect(firstDifference(ours, expected)).toBe(-1);
      expect(readJpegInfo(ours).restartInterval).toBe(n);
    }
  });
});

describe.skipIf(!hasLibjpegTools)('decoder equals Debian djpeg', () => {
  const variants: [string, string[]][] = [
    ['baseline', []],
    ['progressive', ['-progressive']],
    ['progressive + restarts', ['-progressive', '-restart', '1B']],
    ['optimized + restarts', ['-optimize', '-restart', '3B']],
  ];
  const cases = variants.flatMap(([name, args]) =>
    SUBSAMPLINGS.flatMap((s) => SIZES.map(([w, h], i) => [name, s, w, h, [...args, '-sample', SAMPLE_ARG[s]], i] as const)),
  );
  it.each(cases)('%s %s %i×%i', (_, __, w, h, args, i) => {
    const jpeg = cjpeg(syntheticPhoto(w, h, 200 + i), ['-quality', String(20 + 10 * i), ...args]);
    const ours = decodeJpeg(jpeg);
    expect(firstDifference(ours.data, djpeg(jpeg).data)).toBe(-1);
  });

  it.each([['-progressive'], []])('grayscale %s', (...args) => {
    for (const [w, h] of SIZES) {
      const jpeg = cjpeg(toGray(syntheticPhoto(w, h, 3)), ['-quality', '40', ...args]);
      const native = decodeJpeg(jpeg, { output: 'native' });
      expect(native.channels).toBe(1);
      expect(firstDifference(decodeJpeg(jpeg).data, djpeg(jpeg).data)).toBe(-1);
    }
  });

  it('16-bit quantisation tables (SOF1) and unusual sampling (luma 2×2 with 1×2 chroma via -sample 2x2,1x2)', () => {
    const image = syntheticPhoto(45, 38, 5);
    for (const jpeg of [cjpeg(image, ['-quality', '2']), cjpeg(image, ['-quality', '60', '-sample', '2x2,1x2,1x1'])]) {
      expect(firstDifference(decodeJpeg(jpeg).data, djpeg(jpeg).data)).toBe(-1);
    }
  });
});
