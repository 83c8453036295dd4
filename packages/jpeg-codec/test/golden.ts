import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { golden, readPngRgb } from '../../../test-support/golden.js';

export const JPEG_DIR = golden('jpeg');

export const manifest = JSON.parse(readFileSync(join(JPEG_DIR, 'manifest.json'), 'utf8'));

export function readGolden(relative: string): Uint8Array {
  return new Uint8Array(readFileSync(join(JPEG_DIR, relative)));
}

export const goldenImage = (name: string) => readPngRgb(join(JPEG_DIR, manifest.images[name].png));

export const sha256 = (data: Uint8Array | Uint8ClampedArray) => createHash('sha256').update(data).digest('hex');

export interface EncodingCase {
  image: string;
  key: string;
  encoder: 'pil' | 'opencv' | 'cjpeg' | 'cjpeg_baseline';
  quality: number;
  jpeg: string;
  sha256: string;
  decodedPng: string;
  decodedSha256: string;
}

export const encodingCases: EncodingCase[] = Object.entries<Record<string, any>>(manifest.encodings).flatMap(([image, encs]) =>
  Object.entries<any>(encs).map(([key, e]) => ({
    image,
    key,
    encoder: e.encoder,
    quality: e.quality,
    jpeg: e.jpeg,
    sha256: e.sha256,
    decodedPng: e.decoded.djpeg.png,
    decodedSha256: e.decoded.djpeg.rgb_sha256,
  })),
);

export function firstDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : n;
}
