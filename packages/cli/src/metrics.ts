import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { psnr, ssim } from '@codiff/metrics';
import type { BackendName } from '@codiff/nn';
import { CliError, readImage } from './io.js';

export interface MetricsArgs {
  reference: string;
  test: string;
  crop: number;
  /** VGG16 trunk: a safetensors file, or a folder holding the three standard file names. */
  vgg?: string;
  dists?: string;
  lpips?: string;
  backend?: string;
  /** Refuse larger inputs (from the header, before decoding). */
  maxPixels: number;
}

export interface MetricsResult {
  width: number;
  height: number;
  psnrY: number;
  psnrRgb: number;
  ssimY: number;
  lpips?: number;
  dists?: number;
}

/** File names `codiff convert-weights` docs suggest; a --vgg folder is searched for them. */
export const WEIGHT_FILES = { vgg: 'vgg16.safetensors', dists: 'dists_weights.safetensors', lpips: 'lpips_vgg_v0.1.safetensors' };

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}

/** PSNR and SSIM always; LPIPS and DISTS when VGG weights are given (TF.js is loaded only then). */
export async function metricsCommand(args: MetricsArgs): Promise<MetricsResult> {
  const [a, b] = await Promise.all([args.reference, args.test].map((path) => readImage(path, { maxPixels: args.maxPixels, channels: 'rgb' })));
  if (a.width !== b.width || a.height !== b.height) {
    throw new CliError(`image sizes differ: ${a.width}×${a.height} vs ${b.width}×${b.height}`);
  }
  const measured = (f: () => number) => {
    try {
      return f();
    } catch (e) {
      if (e instanceof RangeError) throw new CliError(e.message);
      throw e;
    }
  };
  const crop = args.crop;
  const result: MetricsResult = {
    width: a.width,
    height: a.height,
    psnrY: measured(() => psnr(a, b, { on: 'y', crop })),
    psnrRgb: measured(() => psnr(a, b, { on: 'rgb', crop })),
    ssimY: measured(() => ssim(a, b, { on: 'y', crop })),
  };
  if (!args.vgg) {
    if (args.dists || args.lpips) throw new CliError('--dists and --lpips need --vgg (the VGG16 trunk they run on)');
    return result;
  }
  let { vgg, dists, lpips } = args;
  if (await isDirectory(vgg)) {
    const folder = vgg;
    vgg = join(folder, WEIGHT_FILES.vgg);
    dists ??= join(folder, WEIGHT_FILES.dists);
    lpips ??= join(folder, WEIGHT_FILES.lpips);
  } else if (!dists && !lpips) {
    throw new CliError('with a --vgg file, give --dists and/or --lpips (or pass a folder holding all three files)');
  }
  // TF.js is loaded only for the perceptual metrics. An unknown backend name is useBackend's NnError.
  const nn = await import('@codiff/nn');
  await nn.useBackend(args.backend as BackendName | undefined);
  const node = await import('@codiff/losses/node');
  const tf = await import('@tensorflow/tfjs-core');
  const trunk = await node.loadVgg16(vgg);
  // The crop applies to every metric, so the perceptual ones see the same pixels.
  const tensor = (img: typeof a) =>
    tf.tidy(() => {
      const full = tf.tensor4d(Float32Array.from(img.data, (v) => v / 255), [1, img.height, img.width, 3]);
      return tf.slice(full, [0, crop, crop, 0], [1, img.height - 2 * crop, img.width - 2 * crop, 3]);
    });
  const [x0, x1] = [tensor(a), tensor(b)];
  const perceptual = [
    ['lpips', lpips, node.loadLpips],
    ['dists', dists, node.loadDists],
  ] as const;
  try {
    for (const [metric, path, load] of perceptual) {
      if (!path) continue;
      const model = await load(trunk, path);
      const score = model.score(x0, x1);
      result[metric] = (await score.data())[0];
      score.dispose();
      model.dispose();
    }
  } finally {
    tf.dispose([x0, x1]);
    for (const p of trunk.parameters()) p.dispose();
  }
  return result;
}

export function formatMetrics(r: MetricsResult, crop: number): string {
  const lines = [
    `size:        ${r.width}×${r.height}${crop ? ` (${crop} px cropped per border)` : ''}`,
    `PSNR (Y):    ${r.psnrY.toFixed(4)} dB`,
    `PSNR (RGB):  ${r.psnrRgb.toFixed(4)} dB`,
    `SSIM (Y):    ${r.ssimY.toFixed(6)}`,
  ];
  if (r.lpips !== undefined) lines.push(`LPIPS:       ${r.lpips.toFixed(6)}`);
  if (r.dists !== undefined) lines.push(`DISTS:       ${r.dists.toFixed(6)}`);
  return lines.join('\n');
}
