// Where the golden vectors are, for every package's tests (no TF.js here, so any package can import it).
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PNG } from 'pngjs';

/** `../shared/golden` beside the repository (override with CODIFF_GOLDEN). */
export const GOLDEN_DIR = process.env.CODIFF_GOLDEN ?? resolve(dirname(fileURLToPath(import.meta.url)), '../../shared/golden');
if (!existsSync(join(GOLDEN_DIR, 'README.md'))) {
  throw new Error(`golden vectors not found at ${GOLDEN_DIR}: check out ../shared beside the repo or set CODIFF_GOLDEN`);
}

export const golden = (...parts: string[]) => join(GOLDEN_DIR, ...parts);
export const goldenJson = (...parts: string[]) => JSON.parse(readFileSync(golden(...parts), 'utf8'));

/** max|a−b| / max|ref|, the golden README's tolerance measure. */
export function relMaxError(actual: ArrayLike<number>, ref: ArrayLike<number>): number {
  let maxDiff = 0;
  let maxRef = 0;
  for (let i = 0; i < ref.length; i++) {
    maxDiff = Math.max(maxDiff, Math.abs(actual[i] - ref[i]));
    maxRef = Math.max(maxRef, Math.abs(ref[i]));
  }
  return maxDiff / maxRef;
}

/** A PNG file as interleaved 8-bit RGB (alpha dropped), the shape of @codiff/jpeg-codec's RawImage. */
export function readPngRgb(path: string): { width: number; height: number; channels: 3; data: Uint8Array } {
  const png = PNG.sync.read(Buffer.from(readFileSync(path)));
  const data = new Uint8Array(png.width * png.height * 3);
  for (let i = 0, j = 0; i < data.length; i += 3, j += 4) {
    data[i] = png.data[j];
    data[i + 1] = png.data[j + 1];
    data[i + 2] = png.data[j + 2];
  }
  return { width: png.width, height: png.height, channels: 3, data };
}

/** `../shared/weights`: the real pretrained files (beside the golden folder). */
export const WEIGHTS_DIR = resolve(GOLDEN_DIR, '../weights');
export const sharedWeights = (...parts: string[]) => join(WEIGHTS_DIR, ...parts);

/** `../shared/photos`: the real photographs (train, val, test). */
export const sharedPhotos = (...parts: string[]) => join(GOLDEN_DIR, '../photos', ...parts);
