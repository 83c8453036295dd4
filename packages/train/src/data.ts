// Node-only: photo folders and the worker-thread loader of training pairs.
import { open, readdir } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { readImageHeader } from '@codiff/image-io';
import { readImageFile } from '@codiff/image-io/node';
import { TrainError } from './errors.js';
import { Rng } from './rng.js';
import { batchOf, drawRecipe, makePair, type PairBatch, type SampleRecipe, type TrainingPair } from './samples.js';
import type { PairJob, PairReply } from './data-worker.js';

export interface Photo {
  readonly path: string;
  /** Upright size (EXIF orientation applied). */
  readonly width: number;
  readonly height: number;
}

export interface SkippedFile {
  readonly path: string;
  readonly reason: string;
}

const PHOTO_EXTENSIONS = /\.(png|jpe?g)$/i;
// Enough for a PNG's IHDR and a JPEG's SOF behind a large EXIF block; files whose SOF lies further are read whole.
const HEADER_BYTES = 256 * 1024;

/**
 * Every PNG/JPEG under `dir` (recursively, in a stable order) at least `minSize` pixels on each side. Files too
 * small, unreadable or not images are skipped and listed with the reason; none of them stops the scan.
 */
export async function scanPhotoFolder(dir: string, minSize: number): Promise<{ photos: Photo[]; skipped: SkippedFile[] }> {
  let entries: string[];
  try {
    entries = (await readdir(dir, { recursive: true })).filter((p) => PHOTO_EXTENSIONS.test(p)).sort();
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new TrainError(code === 'ENOENT' ? `${dir}: no such folder` : code === 'ENOTDIR' ? `${dir}: not a folder` : `${dir}: ${(e as Error).message}`);
  }
  const photos: Photo[] = [];
  const skipped: SkippedFile[] = [];
  for (const entry of entries) {
    const path = join(dir, entry);
    try {
      const header = await readHeader(path);
      const turned = (header.orientation ?? 1) >= 5;
      const [width, height] = turned ? [header.height, header.width] : [header.width, header.height];
      if (width < minSize || height < minSize) skipped.push({ path, reason: `${width}×${height} is smaller than ${minSize}×${minSize}` });
      else photos.push({ path, width, height });
    } catch (e) {
      skipped.push({ path, reason: (e as Error).message });
    }
  }
  return { photos, skipped };
}

async function readHeader(path: string) {
  const handle = await open(path, 'r');
  try {
    const { size } = await handle.stat();
    const head = new Uint8Array(Math.min(size, HEADER_BYTES));
    await handle.read(head, 0, head.length, 0);
    try {
      return readImageHeader(head);
    } catch (e) {
      if (size <= HEADER_BYTES) throw e;
      const whole = new Uint8Array(size);
      await handle.read(whole, 0, size, 0);
      return readImageHeader(whole);
    }
  } finally {
    await handle.close();
  }
}

export interface PairLoaderOptions {
  readonly photos: readonly Photo[];
  readonly patch: number;
  readonly batchSize: number;
  readonly seed: number;
  /** Worker threads (default: the machine's cores, at most 4). */
  readonly workers?: number;
  /** Batches prepared ahead of the one asked for (default 2). */
  readonly prefetch?: number;
  /** Share of grey samples (`drawRecipe`'s `greyFraction`; default 0, the official data). */
  readonly greyFraction?: number;
  /** Called once per file that fails while training (it is then left out; the sample is drawn from another photo). */
  readonly onSkip?: (file: SkippedFile) => void;
}

/**
 * Training batches as a pure function of (seed, step): sample j = step·batch + i takes photo perm_e[j mod n] of
 * epoch e = ⌊j/n⌋'s seeded permutation, and its recipe from the stream (seed, j). Resuming at a step therefore
 * continues the exact data sequence. Decoding and JPEG run in worker threads, `prefetch` batches ahead.
 */
export class PairLoader {
  private readonly workers: Worker[] = [];
  private readonly pending = new Map<number, { worker: number; resolve: (r: PairReply) => void }>();
  private readonly ready = new Map<number, Promise<PairBatch>>();
  private readonly bad = new Set<string>();
  private readonly permutations = new Map<number, number[]>();
  private nextJob = 0;
  private nextWorker = 0;
  private closed = false;

  constructor(private readonly options: PairLoaderOptions) {
    if (options.photos.length === 0) throw new TrainError('no photos to train on');
    const count = Math.max(1, options.workers ?? Math.min(4, availableParallelism()));
    for (let i = 0; i < count; i++) this.spawn(i);
  }

  private spawn(index: number): void {
    const w = new Worker(workerUrl());
    w.on('message', (reply: PairReply) => {
      const p = this.pending.get(reply.id);
      this.pending.delete(reply.id);
      p?.resolve(reply);
    });
    // A worker that dies (e.g. out of memory on one photo) fails only its own jobs and is replaced.
    w.on('error', (e) => {
      for (const [id, p] of this.pending) {
        if (p.worker !== index) continue;
        this.pending.delete(id);
        p.resolve({ id, ok: false, error: `data worker crashed: ${e.message}` });
      }
      if (!this.closed) this.spawn(index);
    });
    this.workers[index] = w;
  }

  /** The batch of `step` (0-based), and the ones after it queued. */
  async batch(step: number): Promise<PairBatch> {
    if (this.closed) throw new TrainError('the loader is closed');
    for (let s = step; s <= step + (this.options.prefetch ?? 2); s++) if (!this.ready.has(s)) this.ready.set(s, this.assemble(s));
    for (const s of this.ready.keys()) if (s < step) this.ready.delete(s);
    const out = this.ready.get(step)!;
    this.ready.delete(step);
    return out;
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.workers.map((w) => w.terminate()));
  }

  /** The photo and recipe of sample j; after `attempt` failures, the photos after it in the permutation. */
  sampleOf(j: number, attempt = 0): { photo: Photo; recipe: SampleRecipe } {
    const { photos, seed, patch, greyFraction } = this.options;
    const n = photos.length;
    const epoch = Math.floor(j / n);
    let perm = this.permutations.get(epoch);
    if (!perm) {
      perm = Rng.derive(seed, 1, epoch).permutation(n);
      this.permutations.set(epoch, perm);
      this.permutations.delete(epoch - 2);
    }
    const photo = photos[perm[(j + attempt) % n]];
    return { photo, recipe: drawRecipe(Rng.derive(seed, 2, j, attempt), photo.width, photo.height, patch, greyFraction) };
  }

  private async assemble(step: number): Promise<PairBatch> {
    const { batchSize: b, patch } = this.options;
    return batchOf(await Promise.all(Array.from({ length: b }, (_, i) => this.sample(step * b + i))), patch);
  }

  private async sample(j: number): Promise<TrainingPair> {
    const n = this.options.photos.length;
    for (let attempt = 0; attempt < n; attempt++) {
      const { photo, recipe } = this.sampleOf(j, attempt);
      if (this.bad.has(photo.path)) continue;
      const reply = await this.run({ id: this.nextJob++, path: photo.path, recipe, patch: this.options.patch });
      if (reply.ok) return reply.pair;
      if (!this.bad.has(photo.path)) {
        this.bad.add(photo.path);
        this.options.onSkip?.({ path: photo.path, reason: reply.error });
      }
    }
    throw new TrainError(`every photo failed to load (${this.bad.size} files; the first reasons were reported)`);
  }

  private run(job: PairJob): Promise<PairReply> {
    return new Promise((resolve) => {
      const worker = this.nextWorker++ % this.workers.length;
      this.pending.set(job.id, { worker, resolve });
      this.workers[worker].postMessage(job);
    });
  }
}

/** The built worker next to this module; from the TypeScript sources (tests), the package's build of it. */
function workerUrl(): URL {
  const here = import.meta.url;
  return here.endsWith('.ts') ? new URL('../dist/data-worker.js', here) : new URL('./data-worker.js', here);
}

/** Centre patches of every photo of a validation folder at each QF (aligned grid, no transform), as one batch. */
export async function centrePairs(dir: string, patch: number, qualities: readonly number[], onLog?: (line: string) => void): Promise<PairBatch> {
  const { photos, skipped } = await scanPhotoFolder(dir, patch + 8);
  for (const f of skipped) onLog?.(`skipped validation file ${f.path}: ${f.reason}`);
  if (photos.length === 0) throw new TrainError(`${dir}: no usable validation photos (at least ${patch + 8}×${patch + 8})`);
  const pairs: TrainingPair[] = [];
  for (const photo of photos) {
    const image = await readImageFile(photo.path, { channels: 'rgb', orient: true });
    const top = (photo.height - patch - 8) >> 1, left = (photo.width - patch - 8) >> 1;
    for (const q of qualities) pairs.push(makePair(image, { top, left, mode: 0, quality: q, shiftTop: 0, shiftLeft: 0 }, patch));
  }
  return batchOf(pairs, patch);
}
