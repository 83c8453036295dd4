import { beforeAll, describe, expect, it } from 'vitest';
import { decodeJpeg } from '../src/index.js';
import { fuzz } from './fuzz-core.js';
import { fuzzSeeds } from './seeds.js';

// Seeded and reproducible; `npm run fuzz -w @codiff/jpeg-codec -- --iterations N --seed S` runs longer campaigns.
describe('mutation fuzzing of the decoder', () => {
  let seeds: Uint8Array[] = [];
  beforeAll(async () => {
    seeds = await fuzzSeeds();
  });

  it('seed files decode', () => {
    for (const s of seeds) expect(decodeJpeg(s).width).toBeGreaterThan(0);
  });

  it('4000 mutated files give only valid images or typed JpegErrors, none slow', () => {
    const report = fuzz(seeds, 4000, 20261124);
    expect(report.failures).toEqual([]);
    // The campaign must exercise both outcomes, and several error paths.
    expect(report.decoded).toBeGreaterThan(200);
    expect(Object.keys(report.rejected).length).toBeGreaterThanOrEqual(3);
  });
});
