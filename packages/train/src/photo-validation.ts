// Node-only: validation on the validation photos whole, measured as `codiff eval --protocol full` measures them. A
// model is chosen by what it does to whole photos; small centre patches can rank two checkpoints the other way round.
import { compress, measure, type PerceptualModels } from '@codiff/eval';
import type { RawImage } from '@codiff/jpeg-codec';
import { readImageFile } from '@codiff/image-io/node';
import { deblocksByDefault, restoreImage, smoothBlockEdges, type CodiffGenerator, type Pixels } from '@codiff/pipeline';
import { scanPhotoFolder } from './data.js';
import { TrainError } from './errors.js';

/** The JPEG qualities the whole photos are validated at. */
export const PHOTO_VALIDATION_QUALITIES = [10, 30] as const;

/** CaVE's smallest input (its body encoder downsamples ×32 after padding to a multiple of 8). */
const MIN_SIDE = 25;

/** One validation photo (the ground truth, as read) and its decoded JPEG at each quality. */
export interface ValidationPhoto {
  readonly path: string;
  readonly truth: RawImage;
  readonly jpegs: readonly { readonly quality: number; readonly decoded: RawImage }[];
}

/** Every photo under `dir`, compressed once at each quality as `codiff eval` does (grey stays one channel). */
export async function readValidationPhotos(dir: string, qualities: readonly number[] = PHOTO_VALIDATION_QUALITIES, onLog?: (line: string) => void): Promise<ValidationPhoto[]> {
  const { photos, skipped } = await scanPhotoFolder(dir, MIN_SIDE);
  for (const f of skipped) onLog?.(`skipped validation file ${f.path}: ${f.reason}`);
  if (photos.length === 0) throw new TrainError(`${dir}: no usable validation photos (at least ${MIN_SIDE}×${MIN_SIDE})`);
  const read: ValidationPhoto[] = [];
  for (const { path } of photos) {
    const truth = await readImageFile(path);
    read.push({ path, truth, jpegs: qualities.map((quality) => ({ quality, decoded: compress(truth, quality).decoded })) });
  }
  return read;
}

/**
 * Restore every photo's JPEGs with `restoreImage` (tiles and colour fix as `codiff restore`) and average over the
 * photos, per quality: PSNR-Y and PSNR-B (dB), and each perceptual score whose model is given, keyed `psnrY_q10`,
 * `psnrB_q10`, `lpips_q10`, …. Where the default restore ends in block-edge smoothing (codiff-lite), the model's own
 * output is measured too (`modelPsnrY_q10`, `modelPsnrB_q10`): the smoothing hides what training did to PSNR-B. Both
 * come from one restore, as the smoothing is a pass over its pixels.
 */
export async function validateOnPhotos(g: CodiffGenerator, photos: readonly ValidationPhoto[], models: PerceptualModels = {}): Promise<Record<string, number>> {
  const deblock = deblocksByDefault(g);
  const sums: Record<string, number> = {};
  const add = (scores: Record<string, number | undefined>, quality: number) => {
    for (const [name, value] of Object.entries(scores)) {
      if (value !== undefined) sums[`${name}_q${quality}`] = (sums[`${name}_q${quality}`] ?? 0) + value;
    }
  };
  for (const photo of photos) {
    for (const { quality, decoded } of photo.jpegs) {
      const model = await restoreImage(g, decoded as Pixels, { deblock: false });
      const restored = deblock ? smoothBlockEdges(model).image : model;
      const { psnr, psnrB, lpips, dists } = await measure(photo.truth, restored, models);
      add({ psnrY: psnr, psnrB, lpips, dists }, quality);
      if (deblock) {
        const alone = await measure(photo.truth, model);
        add({ modelPsnrY: alone.psnr, modelPsnrB: alone.psnrB }, quality);
      }
    }
  }
  return Object.fromEntries(Object.entries(sums).map(([k, v]) => [k, v / photos.length]));
}
