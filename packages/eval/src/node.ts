// Running an evaluation over folders of photos (Node): restorers that are programs (jpegqs, any command), loading
// the weights of the perceptual metrics and DnCNN-3, and writing the report.
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, extname, join } from 'node:path';
import { decodeImage, encodePng, ImageIoError } from '@codiff/image-io';
import { readFileBytes, readImageFile, writeFileAtomic } from '@codiff/image-io/node';
import type { RawImage } from '@codiff/jpeg-codec';
import { NnError } from '@codiff/nn';
import { readSafetensorsFile } from '@codiff/nn/node';
import { loadDists, loadLpips, loadLpipsSqueeze, loadVgg16 } from '@codiff/losses/node';
import { DnCNN } from './dncnn.js';
import { EvalError } from './errors.js';
import { measure, type PerceptualModels } from './measure.js';
import { compress, groundTruth, type Protocol } from './protocol.js';
import { centreCrop, contactSheet, summarise, summaryMarkdown, toCsv, type ResultRow, type SummaryRow } from './report.js';

/** A restoration method under test: given the JPEG file (and its decoded pixels), the restored pixels. */
export interface Restorer {
  readonly name: string;
  restore(jpegPath: string, decoded: RawImage, workDir: string): Promise<RawImage>;
}

/** Run a program; reject with its stderr's last line when it fails or cannot start. */
function execute(command: string, args: readonly string[], what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', (e: NodeJS.ErrnoException) =>
      reject(new EvalError(e.code === 'ENOENT' ? `${what}: '${command}' is not installed or not on the PATH` : `${what}: ${e.message}`)),
    );
    child.on('close', (code) => (code === 0 ? resolve() : reject(new EvalError(`${what} failed (exit ${code}): ${stderr.trim().split('\n').pop() ?? ''}`))));
  });
}

/** Debian's jpegqs (JPEG quantisation smoothing, a classical artifact remover) with its defaults, JPEG out. */
export const jpegqs = (): Restorer => ({
  name: 'jpegqs',
  async restore(jpegPath, _decoded, workDir) {
    const out = join(workDir, 'jpegqs.jpg');
    await execute('jpegqs', [jpegPath, out], 'jpegqs');
    return decodeImage(await readFileBytes(out), { maxPixels: Infinity });
  },
});

/**
 * Any program as a restorer: `template` is a command line in which `{in}` is replaced by the JPEG's path and
 * `{out}` by the PNG (or JPEG) path the program must write, e.g. `python3 restore.py {in} {out}`. Arguments are
 * split on spaces; no shell is involved.
 */
export function commandRestorer(name: string, template: string): Restorer {
  const words = template.trim().split(/\s+/);
  if (!words.some((w) => w.includes('{in}')) || !words.some((w) => w.includes('{out}'))) {
    throw new EvalError(`the command for '${name}' must contain {in} and {out}: ${template}`);
  }
  return {
    name,
    async restore(jpegPath, _decoded, workDir) {
      const out = join(workDir, `${name.replace(/\W+/g, '_')}.png`);
      const [command, ...args] = words.map((w) => w.replaceAll('{in}', jpegPath).replaceAll('{out}', out));
      await execute(command, args, name);
      return decodeImage(await readFileBytes(out), { maxPixels: Infinity });
    },
  };
}

/** DnCNN-3 from its safetensors file (`weights/dncnn3/dncnn3.safetensors`); grey, or colour on luma. */
export async function loadDnCNN(path: string): Promise<DnCNN> {
  const net = new DnCNN();
  const weights = await readSafetensorsFile(path);
  try {
    net.loadStateDict(weights);
  } catch (e) {
    throw new NnError(`${path}: ${(e as Error).message}`);
  }
  return net;
}

export const dncnn3 = (net: DnCNN): Restorer => ({ name: 'DnCNN-3', restore: (_path, decoded) => net.restore(decoded) });

/**
 * The perceptual models from a weights folder laid out as `../shared/weights` is: `squeezenet1_1/features.safetensors`
 * and `lpips/squeeze.safetensors` give LPIPS-squeeze; with `vgg` (a folder holding `vgg16.safetensors`,
 * `dists_weights.safetensors`, `lpips_vgg_v0.1.safetensors`) also LPIPS-vgg and DISTS.
 */
export async function loadPerceptualModels(weights: string | undefined, vgg: string | undefined): Promise<PerceptualModels> {
  const models: { -readonly [K in keyof PerceptualModels]: PerceptualModels[K] } = {};
  if (weights) models.lpips = await loadLpipsSqueeze(join(weights, 'squeezenet1_1/features.safetensors'), join(weights, 'lpips/squeeze.safetensors'));
  if (vgg) {
    const trunk = await loadVgg16(join(vgg, 'vgg16.safetensors'));
    models.lpipsVgg = await loadLpips(trunk, join(vgg, 'lpips_vgg_v0.1.safetensors'));
    models.dists = await loadDists(trunk, join(vgg, 'dists_weights.safetensors'));
  }
  return models;
}

const IMAGE_EXTENSIONS = new Set(['.png', '.jpg', '.jpeg']);

export interface ImageSet {
  readonly name: string;
  readonly files: readonly string[];
}

/**
 * The test sets in a folder: its image files as one set named after it, and each subfolder holding images as a
 * set of its own (so `photos/test` gives Classic5, McMaster, Kodak-nonLIVE1). Sorted by name.
 */
export async function findImageSets(folder: string): Promise<ImageSet[]> {
  const list = async (dir: string) => {
    try {
      return await readdir(dir, { withFileTypes: true });
    } catch (e) {
      throw new ImageIoError('FILE_SYSTEM', (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such folder' : (e as Error).message, dir);
    }
  };
  const images = (entries: Awaited<ReturnType<typeof list>>, dir: string) =>
    entries.filter((e) => e.isFile() && IMAGE_EXTENSIONS.has(extname(e.name).toLowerCase())).map((e) => join(dir, e.name)).sort();
  const top = await list(folder);
  const sets: ImageSet[] = [];
  const own = images(top, folder);
  if (own.length) sets.push({ name: basename(folder), files: own });
  for (const sub of top.filter((e) => e.isDirectory()).sort((a, b) => a.name.localeCompare(b.name))) {
    const files = images(await list(join(folder, sub.name)), join(folder, sub.name));
    if (files.length) sets.push({ name: sub.name, files });
  }
  if (sets.length === 0) throw new ImageIoError('FILE_SYSTEM', 'holds no PNG or JPEG images', folder);
  return sets;
}

export interface EvaluationOptions {
  readonly sets: readonly ImageSet[];
  readonly qualities: readonly number[];
  readonly protocol: Protocol;
  /** The method under test (the "restored" rows), if any. */
  readonly restorer?: Restorer;
  /** Methods to compare with (jpegqs, DnCNN-3, commands). */
  readonly compare: readonly Restorer[];
  readonly models: PerceptualModels;
  readonly maxPixels: number;
}

export interface Progress {
  readonly done: number;
  readonly total: number;
  readonly set: string;
  readonly image: string;
  readonly qf: number;
}

export interface Evaluation {
  readonly rows: ResultRow[];
  readonly summary: SummaryRow[];
  /** Per quality, the contact-sheet crops: per image [ground truth, JPEG, …methods] (centre crops, not whole images). */
  readonly sheets: Map<number, RawImage[][]>;
  readonly methods: readonly string[];
}

/**
 * For each image and quality: ground truth per the protocol, JPEG as PIL writes it, each method's restoration, and
 * every metric against the ground truth. `onProgress` is called after each image × quality.
 */
export async function evaluate(options: EvaluationOptions, onProgress: (p: Progress) => void = () => {}): Promise<Evaluation> {
  const methods = [...options.compare, ...(options.restorer ? [options.restorer] : [])];
  const rows: ResultRow[] = [];
  const sheets = new Map<number, RawImage[][]>(options.qualities.map((q) => [q, []]));
  const total = options.sets.reduce((n, s) => n + s.files.length, 0) * options.qualities.length;
  const work = await mkdtemp(join(tmpdir(), 'codiff-eval-'));
  let done = 0;
  try {
    for (const set of options.sets) {
      for (const file of set.files) {
        const image = basename(file);
        const truth = groundTruth(await readImageFile(file, { maxPixels: options.maxPixels }), options.protocol);
        for (const qf of options.qualities) {
          const { jpeg, decoded } = compress(truth, qf);
          const jpegPath = join(work, 'input.jpg');
          await writeFile(jpegPath, jpeg);
          const bpp = (jpeg.length * 8) / (truth.width * truth.height);
          rows.push({ set: set.name, image, qf, method: 'jpeg', bpp, ...(await measure(truth, decoded, options.models)) });
          const pictures = [centreCrop(truth), centreCrop(decoded)];
          for (const method of methods) {
            const start = performance.now();
            const restored = await method.restore(jpegPath, decoded, work);
            const seconds = (performance.now() - start) / 1000;
            if (restored.width !== truth.width || restored.height !== truth.height) {
              throw new EvalError(`${method.name} returned ${restored.width}×${restored.height} for the ${truth.width}×${truth.height} ${image}`);
            }
            rows.push({ set: set.name, image, qf, method: method.name, seconds, ...(await measure(truth, restored, options.models)) });
            pictures.push(centreCrop(restored));
          }
          sheets.get(qf)!.push(pictures);
          onProgress({ done: ++done, total, set: set.name, image, qf });
        }
      }
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  return { rows, summary: summarise(rows), sheets, methods: methods.map((m) => m.name) };
}

/** `results.csv`, `summary.md`, `summary.json` and `contact-qf<N>.png` in `folder`; returns the paths written. */
export async function writeReport(folder: string, evaluation: Evaluation, protocol: Protocol): Promise<string[]> {
  const written: string[] = [];
  const write = async (name: string, bytes: Uint8Array | string) => {
    const path = join(folder, name);
    await writeFileAtomic(path, typeof bytes === 'string' ? new TextEncoder().encode(bytes) : bytes);
    written.push(path);
  };
  const columns = ['ground truth', 'JPEG', ...evaluation.methods].join(' | ');
  const intro = `# Evaluation\n\nProtocol \`${protocol}\`; PSNR, SSIM and PSNR-B on Y (BT.601, rounded as MATLAB's rgb2ycbcr) or on the grey value; means over each set's images. DnCNN-3 is a grey model: colour images are restored on luma with the JPEG's chroma kept. Contact sheets (centre crops, 1:1), left to right: ${columns}.\n\n`;
  await write('results.csv', toCsv(evaluation.rows));
  await write('summary.md', intro + summaryMarkdown(evaluation.summary));
  await write('summary.json', `${JSON.stringify({ protocol, methods: evaluation.methods, summary: evaluation.summary }, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? (v > 0 ? 'inf' : '-inf') : v), 2)}\n`);
  for (const [qf, pictures] of evaluation.sheets) await write(`contact-qf${qf}.png`, encodePng(contactSheet(pictures)));
  return written;
}
