import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { golden, goldenJson } from '../../../test-support/golden.js';
import { decodeImage, resizeLanczos, resizeToMultipleOf8 } from '../src/index.js';

const manifest = goldenJson('resize', 'manifest.json') as { cases: Record<string, { in: string; out: string; out_size_WxH: [number, number] }> };
const png = (name: string) => decodeImage(new Uint8Array(readFileSync(golden('resize', name))));

describe('resizeLanczos equals Pillow 9.4 LANCZOS to the bit', () => {
  for (const [name, c] of Object.entries(manifest.cases)) {
    it(name, () => {
      const input = png(c.in);
      const want = png(c.out);
      const got = resizeToMultipleOf8(input);
      expect([got.width, got.height]).toEqual(c.out_size_WxH);
      expect(got.channels).toBe(want.channels);
      expect(Buffer.from(got.data).equals(Buffer.from(want.data))).toBe(true);
    });
  }

  it('is the identity at the same size, and resamples only the axis that changes', () => {
    const input = png(manifest.cases.rgb_250x190.in);
    expect(Buffer.from(resizeLanczos(input, 250, 190).data).equals(Buffer.from(input.data))).toBe(true);
    const narrower = resizeLanczos(input, 248, 190);
    const both = resizeLanczos(input, 248, 184);
    expect(Buffer.from(resizeLanczos(narrower, 248, 184).data).equals(Buffer.from(both.data))).toBe(true);
    expect(() => resizeLanczos(input, 0, 10)).toThrow(RangeError);
  });
});
