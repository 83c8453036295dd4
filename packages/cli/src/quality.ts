import { join } from 'node:path';
import { readFileBytes } from '@codiff/image-io/node';
import { SingleBar } from 'cli-progress';
import { startBackend } from './backend.js';
import { CliError } from './io.js';

export interface QualityRow {
  file: string;
  /** From the quantisation tables; null for a PNG. */
  tables: { quality: number; exact: boolean } | null;
  /** CaVE's estimate from the decoded pixels. */
  cave: number;
}

/**
 * Load a CaVE checkpoint on a backend, by default the one codiff-lite ships (its QF head trained, its patch in the
 * metadata); `qualityPatch` overrides the QF head's training patch read from the checkpoint.
 */
export async function loadCaveModel(model: string | undefined, args: { qualityPatch?: number; backend?: string; threads?: number }) {
  const caveNode = await import('@codiff/cave/node');
  const path = model ?? join((await import('@codiff/model-lite/node')).liteModelDir(), 'cave.safetensors');
  await startBackend(args.backend, args.threads);
  return caveNode.loadCave(path, { qualityPatch: args.qualityPatch });
}

/** `codiff quality`: each file's QF from its tables beside CaVE's estimate from its pixels alone. */
export async function qualityCommand(files: string[], args: { model?: string; qualityPatch?: number; backend?: string; threads?: number; maxPixels: number }): Promise<QualityRow[]> {
  const [{ readJpegInfo }, { decodeImage }, tf] = await Promise.all([import('@codiff/jpeg-codec'), import('@codiff/image-io'), import('@tensorflow/tfjs-core')]);
  const cave = await loadCaveModel(args.model, args);
  try {
    const rows: QualityRow[] = [];
    for (const file of files) {
      const bytes = await readFileBytes(file);
      const image = decodeImage(bytes, { channels: 'rgb', orient: false, maxPixels: args.maxPixels });
      const tables = image.format === 'jpeg' ? (readJpegInfo(bytes).quality ?? null) : null;
      if (image.width < 25 || image.height < 25) throw new CliError(`${file}: ${image.width}×${image.height} is too small for CaVE (at least 25×25)`);
      const x = tf.tidy(() => tf.div(tf.tensor4d(image.data, [1, image.height, image.width, 3], 'float32'), 255) as import('@tensorflow/tfjs-core').Tensor4D);
      try {
        rows.push({ file, tables: tables && { quality: tables.quality, exact: tables.exact }, cave: await cave.estimateQuality(x) });
      } finally {
        x.dispose();
      }
    }
    return rows;
  } finally {
    cave.dispose();
  }
}

export interface CavePlotArgs {
  data: string;
  qualities: number[];
  output: string;
  /** CaVE weights; default: codiff-lite's. */
  model?: string;
  qualityPatch?: number;
  backend?: string;
  threads?: number;
  seed: number;
  progress: boolean;
}

/**
 * `codiff cave-plot`: every photo of a folder JPEG'd at each QF, embedded by CaVE, projected to 2-D by UMAP and
 * drawn coloured by QF (the paper's Figs. 2 and 4); returns the QF estimator's error per QF.
 */
export async function cavePlotCommand(args: CavePlotArgs) {
  const [train, { writeFileAtomic }] = await Promise.all([import('@codiff/train/node'), import('@codiff/image-io/node')]);
  if (!/\.(png|svg)$/i.test(args.output)) throw new CliError(`${args.output}: the plot is written as .png or .svg`);
  const { photos } = await train.scanPhotoFolder(args.data, 32);
  if (photos.length === 0) throw new CliError(`${args.data}: no PNG/JPEG photos of at least 32×32`);
  const cave = await loadCaveModel(args.model, args);
  const bar = new SingleBar({ format: 'cave-plot [{bar}] {value}/{total} image×QF | ETA {eta_formatted}', stream: process.stderr, clearOnComplete: true });
  if (args.progress) bar.start(photos.length * args.qualities.length, 0);
  try {
    const study = await train.qualityStudy(cave, photos.map((p) => p.path), args.qualities, {
      seed: args.seed,
      onProgress: (done) => args.progress && bar.update(done),
    });
    const svg = await train.scatterSvg(study.points, `CaVE embeddings of ${photos.length} photos × ${args.qualities.length} QFs (UMAP)`, 'QF');
    const bytes = /\.svg$/i.test(args.output) ? new TextEncoder().encode(svg) : await train.svgToPng(svg);
    await writeFileAtomic(args.output, bytes);
    return { photos: photos.length, rows: study.rows, output: args.output };
  } finally {
    if (args.progress) bar.stop();
    cave.dispose();
  }
}
