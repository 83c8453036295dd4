// Node-only: fitting codiff-lite's luma post-filter (@codiff/pipeline's LumaPostFilter) on training photos. Each
// photo is compressed at every quality as `codiff eval` does, restored as `restoreImage` does up to the block-edge
// smoothing, and its pixels go into the least squares. The filter is linear and fitted in closed form: one pass.
import { compress } from '@codiff/eval';
import { readImageFile } from '@codiff/image-io/node';
import { deblocksByDefault, LumaPostFilter, LumaPostFilterFit, restoreImage, smoothBlockEdges, type CodiffGenerator, type Pixels } from '@codiff/pipeline';
import { scanPhotoFolder } from './data.js';
import { TrainError } from './errors.js';

/** The qualities the shipped filter was fitted at: QF 5 to 60, so that one filter serves any QF without knowing it. */
export const POST_FILTER_QUALITIES = [5, 10, 20, 30, 40, 60] as const;

/** CaVE's smallest input. */
const MIN_SIDE = 25;

export interface PostFilterFitOptions {
  /** Photos (PNG/JPEG, searched recursively), of which every `every`-th in name order is used (default 1: all). */
  readonly data: string;
  readonly every?: number;
  readonly qualities?: readonly number[];
  /**
   * Stages, each fitted on the previous one's outputs (default 2). Beyond the first, the restores are kept in memory
   * between stages: about 9 bytes per pixel per quality.
   */
  readonly stages?: number;
  /** See `PostFilterSolveOptions.ridge`. */
  readonly ridge?: number;
  readonly onProgress?: (photosDone: number, photos: number) => void;
  readonly onLog?: (line: string) => void;
  /** Checked between restores: aborting throws its reason, and nothing is written. */
  readonly signal?: AbortSignal;
}

/** One restore to fit on: what the next stage sees (`restored`), the JPEG it came from and the original. */
interface FitSample {
  restored: Pixels;
  readonly jpeg: Pixels;
  readonly original: Pixels;
}

/** Fit a luma post-filter to `g`'s restores of the photos in `options.data` (the generator's own filter is not used). */
export async function fitPostFilter(g: CodiffGenerator, options: PostFilterFitOptions): Promise<LumaPostFilter> {
  if (!deblocksByDefault(g)) throw new TrainError('the luma post-filter follows the block-edge smoothing of a model on the pixel-unshuffle stand-in (codiff-lite); an SD-based CODiff has neither');
  const every = options.every ?? 1;
  if (!Number.isInteger(every) || every < 1) throw new TrainError(`every must be a positive integer (got ${every})`);
  const stages = options.stages ?? 2;
  if (!Number.isInteger(stages) || stages < 1) throw new TrainError(`stages must be a positive integer (got ${stages})`);
  const qualities = options.qualities ?? POST_FILTER_QUALITIES;
  if (qualities.length === 0 || qualities.some((q) => !Number.isInteger(q) || q < 1 || q > 100)) throw new TrainError(`qualities must be integers 1..100 (got ${qualities.join(', ')})`);
  const { photos: all, skipped } = await scanPhotoFolder(options.data, MIN_SIDE);
  for (const f of skipped) options.onLog?.(`skipped ${f.path}: ${f.reason}`);
  const photos = all.filter((_, i) => i % every === 0);
  if (photos.length === 0) throw new TrainError(`${options.data}: no usable photos (at least ${MIN_SIDE}×${MIN_SIDE})`);
  options.onLog?.(`restoring ${photos.length} photos at QF ${qualities.join(', ')}`);
  // The first stage is fitted while restoring; later ones on the kept restores, each after the last stage ran on them.
  const kept: FitSample[] = [];
  let fit = new LumaPostFilterFit();
  for (const [i, { path }] of photos.entries()) {
    const original = (await readImageFile(path)) as Pixels;
    for (const quality of qualities) {
      options.signal?.throwIfAborted();
      const jpeg = compress(original, quality).decoded as Pixels;
      const sample = { restored: smoothBlockEdges(await restoreImage(g, jpeg, { deblock: false })).image, jpeg, original };
      fit.add(sample.restored, jpeg, original);
      if (stages > 1) kept.push(sample);
    }
    options.onProgress?.(i + 1, photos.length);
  }
  const fitted = [fit.solve({ ridge: options.ridge })];
  while (fitted.length < stages) {
    options.signal?.throwIfAborted();
    options.onLog?.(`fitting stage ${fitted.length + 1} of ${stages} on stage ${fitted.length}'s outputs`);
    fit = new LumaPostFilterFit();
    for (const sample of kept) {
      sample.restored = fitted[fitted.length - 1].apply(sample.restored, sample.jpeg);
      fit.add(sample.restored, sample.jpeg, sample.original);
    }
    fitted.push(fit.solve({ ridge: options.ridge }));
  }
  return LumaPostFilter.cascade(fitted, {
    photos: String(photos.length),
    every: String(every),
    qualities: qualities.join(','),
    stages: String(stages),
    samples: fitted[0].provenance.samples,
    // The stage with the fewest: each class of each stage needs its pixels.
    classes_fitted: String(Math.min(...fitted.map((f) => Number(f.provenance.classes_fitted)))),
    ridge: fitted[0].provenance.ridge,
    fitted: new Date().toISOString().slice(0, 10),
  });
}
