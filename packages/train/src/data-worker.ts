// Worker thread of PairLoader: reads, decodes and degrades photos into training pairs off the training thread.
import { parentPort } from 'node:worker_threads';
import { readImageFile } from '@codiff/image-io/node';
import type { DecodedImage } from '@codiff/image-io';
import { makePair, type SampleRecipe, type TrainingPair } from './samples.js';

export interface PairJob {
  readonly id: number;
  readonly path: string;
  readonly recipe: SampleRecipe;
  readonly patch: number;
}

export type PairReply =
  | { readonly id: number; readonly ok: true; readonly pair: TrainingPair }
  | { readonly id: number; readonly ok: false; readonly error: string };

// Decoded photos, most recently used last; bounded in bytes so large datasets do not fill memory.
const CACHE_BYTES = 256 * 2 ** 20;
const cache = new Map<string, DecodedImage>();
let cachedBytes = 0;

async function photo(path: string): Promise<DecodedImage> {
  const hit = cache.get(path);
  if (hit) {
    cache.delete(path);
    cache.set(path, hit);
    return hit;
  }
  // Grey photos become three equal channels, as the official loader's cv2.imread(IMREAD_COLOR) does.
  const image = await readImageFile(path, { channels: 'rgb', orient: true });
  cache.set(path, image);
  cachedBytes += image.data.length;
  for (const [key, old] of cache) {
    if (cachedBytes <= CACHE_BYTES || key === path) break;
    cache.delete(key);
    cachedBytes -= old.data.length;
  }
  return image;
}

parentPort!.on('message', async (job: PairJob) => {
  let reply: PairReply;
  try {
    reply = { id: job.id, ok: true, pair: makePair(await photo(job.path), job.recipe, job.patch) };
  } catch (e) {
    reply = { id: job.id, ok: false, error: (e as Error).message };
  }
  parentPort!.postMessage(reply, reply.ok ? [reply.pair.hq.buffer as ArrayBuffer, reply.pair.lq.buffer as ArrayBuffer] : []);
});
