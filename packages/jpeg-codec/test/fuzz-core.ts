import { decodeJpeg, JpegError } from '../src/index.js';
import { rng } from './synthetic.js';

/** One seeded mutation of `seed`: bit flips, byte writes, truncation, insertion, deletion, duplication. */
export function mutate(seed: Uint8Array, random: () => number): Uint8Array {
  const pick = (n: number) => Math.floor(random() * n);
  const headerBiased = () => (random() < 0.5 ? pick(Math.min(seed.length, 700)) : pick(seed.length));
  let out: Uint8Array = seed.slice();
  const rounds = 1 + pick(4);
  for (let r = 0; r < rounds && out.length > 0; r++) {
    const at = Math.min(headerBiased(), out.length - 1);
    switch (pick(7)) {
      case 0:
        out[at] ^= 1 << pick(8);
        break;
      case 1:
        out[at] = [0x00, 0xff, 0x7f, 0x80, pick(256)][pick(5)];
        break;
      case 2:
        out = out.slice(0, at);
        break;
      case 3: {
        const extra = Uint8Array.from({ length: 1 + pick(16) }, () => (random() < 0.3 ? 0xff : pick(256)));
        out = concat(out.subarray(0, at), extra, out.subarray(at));
        break;
      }
      case 4:
        out = concat(out.subarray(0, at), out.subarray(Math.min(out.length, at + 1 + pick(64))));
        break;
      case 5: {
        const len = 1 + pick(128);
        out = concat(out.subarray(0, at), out.subarray(at, at + len), out.subarray(at));
        break;
      }
      default: {
        // 16-bit field write (marker lengths, dimensions).
        const v = [0, 1, 0xffff, pick(65536)][pick(4)];
        out[at] = v >> 8;
        if (at + 1 < out.length) out[at + 1] = v & 0xff;
      }
    }
  }
  return out;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

export interface FuzzReport {
  decoded: number;
  rejected: Record<string, number>;
  /** Anything that is neither a valid image nor a JpegError, or took too long: the bug reports. */
  failures: { iteration: number; problem: string }[];
  slowestMs: number;
}

/**
 * Decode `iterations` mutations of the seed files. Each mutation is reproducible from (seed, iteration).
 * Valid outcomes: a well-formed image, or a JpegError.
 */
export function fuzz(seeds: Uint8Array[], iterations: number, seed: number, maxMsPerCase = 2000): FuzzReport {
  const report: FuzzReport = { decoded: 0, rejected: {}, failures: [], slowestMs: 0 };
  for (let i = 0; i < iterations; i++) {
    const random = rng(seed * 1_000_003 + i);
    const input = mutate(seeds[i % seeds.length], random);
    const allowTruncated = random() < 0.25;
    const start = performance.now();
    try {
      const img = decodeJpeg(input, { maxPixels: 1 << 22, allowTruncated });
      if (img.data.length !== img.width * img.height * img.channels || img.width < 1 || img.height < 1) {
        report.failures.push({ iteration: i, problem: `malformed image ${img.width}×${img.height}×${img.channels}` });
      } else report.decoded++;
    } catch (e) {
      if (e instanceof JpegError) report.rejected[e.code] = (report.rejected[e.code] ?? 0) + 1;
      else report.failures.push({ iteration: i, problem: `non-JpegError: ${(e as Error)?.stack ?? String(e)}` });
    }
    const ms = performance.now() - start;
    report.slowestMs = Math.max(report.slowestMs, ms);
    if (ms > maxMsPerCase) report.failures.push({ iteration: i, problem: `took ${ms.toFixed(0)} ms` });
  }
  return report;
}
