// Node-only: what CaVE learned — its QF estimate per quality and a 2-D map of its embeddings (paper Figs. 2, 4).
import * as tf from '@tensorflow/tfjs-core';
import type { CaVE } from '@codiff/cave';
import { readImageFile } from '@codiff/image-io/node';
import { crop, degrade, type RawImage } from '@codiff/jpeg-codec';
import { UMAP } from 'umap-js';
import { Rng } from './rng.js';

/** The largest side CaVE sees: bigger photos are cropped at the centre (offsets on the 8×8 grid). */
export const STUDY_MAX_SIDE = 512;

export interface QualityRow {
  readonly quality: number;
  readonly images: number;
  /** Mean |estimate − QF|. */
  readonly mae: number;
  readonly meanEstimate: number;
}

export interface QualityStudy {
  readonly rows: QualityRow[];
  /** Mean absolute error over every image at the QFs in [lo, hi]. */
  readonly maeBetween: (lo: number, hi: number) => number;
  /** One point per (image, QF): the token mean projected to 2-D by UMAP, valued by QF. */
  readonly points: { x: number; y: number; value: number; image: string }[];
}

/**
 * JPEG each photo at each quality (RGB, 4:2:0, as the training data), run CaVE on the decoded pixels, and record
 * its QF estimate and its mean token. Grey photos go in as three equal channels.
 */
export async function qualityStudy(
  cave: CaVE,
  photos: readonly string[],
  qualities: readonly number[],
  options: { seed?: number; project?: boolean; onProgress?: (done: number, total: number) => void } = {},
): Promise<QualityStudy> {
  const estimates = new Map<number, number[]>();
  const vectors: number[][] = [];
  const labels: { value: number; image: string }[] = [];
  let done = 0;
  for (const path of photos) {
    const image = centreCrop(await readImageFile(path, { channels: 'rgb', orient: true }));
    for (const q of qualities) {
      const jpeg = degrade(image, { quality: q });
      const x = tf.tidy(() => tf.div(tf.tensor4d(jpeg.data as Uint8Array, [1, jpeg.height, jpeg.width, 3], 'float32'), 255) as tf.Tensor4D);
      const estimate = await cave.estimateQuality(x);
      const tokens = tf.tidy(() => tf.mean(cave.encode(x), [0, 1, 2]));
      vectors.push([...(await tokens.data())]);
      tf.dispose([x, tokens]);
      estimates.set(q, [...(estimates.get(q) ?? []), estimate]);
      labels.push({ value: q, image: path });
      options.onProgress?.(++done, photos.length * qualities.length);
    }
  }
  const rows = qualities.map((q) => {
    const e = estimates.get(q)!;
    return { quality: q, images: e.length, mae: mean(e.map((v) => Math.abs(v - q))), meanEstimate: mean(e) };
  });
  const maeBetween = (lo: number, hi: number) => mean(qualities.flatMap((q) => (q >= lo && q <= hi ? estimates.get(q)!.map((v) => Math.abs(v - q)) : [])));
  let points: QualityStudy['points'] = [];
  if (options.project !== false && vectors.length >= 4) {
    const rng = new Rng(options.seed ?? 0);
    const umap = new UMAP({ nComponents: 2, nNeighbors: Math.min(15, vectors.length - 1), random: () => rng.random() });
    points = umap.fit(vectors).map(([x, y], i) => ({ x, y, ...labels[i] }));
  }
  return { rows, maeBetween, points };
}

/** The centre STUDY_MAX_SIDE² window, its corner on the 8×8 grid so the JPEG blocks stay aligned. */
function centreCrop(image: RawImage): RawImage {
  const w = Math.min(image.width, STUDY_MAX_SIDE), h = Math.min(image.height, STUDY_MAX_SIDE);
  if (w === image.width && h === image.height) return image;
  const left = Math.floor((image.width - w) / 16) * 8, top = Math.floor((image.height - h) / 16) * 8;
  return crop(image, left, top, w, h);
}

const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN);
