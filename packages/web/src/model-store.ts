import { bytesFolder, type ModelFolder } from '@codiff/nn';
import type { ModelSource } from './protocol.js';

/** What the build writes beside a model's files (`models/<name>/manifest.json`): their list, sizes and content id. */
export interface ModelManifest {
  readonly name: string;
  /** Changes whenever any file's content does: the Cache Storage copy is keyed by it. */
  readonly id: string;
  readonly files: readonly { path: string; bytes: number }[];
}

export interface OpenedModel {
  readonly name: string;
  readonly bytes: number;
  readonly folder: ModelFolder;
  /** After loading: 'cache' when every file came from Cache Storage. */
  source(): ModelSource;
}

const CACHE_PREFIX = 'codiff-model-';

/**
 * The site's model folder at `modelUrl`, each file read from Cache Storage when a previous visit stored it and
 * fetched (then stored) otherwise. Copies of older model versions are deleted. Without Cache Storage (a page not
 * served over https or localhost) files are simply fetched.
 */
export async function openSiteModel(modelUrl: string, onBytes: (done: number, total: number) => void): Promise<OpenedModel> {
  const manifestUrl = new URL('manifest.json', modelUrl).href;
  const response = await fetch(manifestUrl, { cache: 'no-cache' }).catch((e: Error) => {
    throw new Error(`cannot reach the model at ${manifestUrl}: ${e.message}`);
  });
  if (!response.ok) throw new Error(`no model at ${manifestUrl} (HTTP ${response.status})`);
  const manifest = (await response.json()) as ModelManifest;
  const total = manifest.files.reduce((n, f) => n + f.bytes, 0);
  const cacheName = `${CACHE_PREFIX}${manifest.name}-${manifest.id}`;
  const cache = typeof caches === 'undefined' ? undefined : await caches.open(cacheName);
  if (cache) {
    for (const old of await caches.keys()) if (old.startsWith(`${CACHE_PREFIX}${manifest.name}-`) && old !== cacheName) await caches.delete(old);
  }
  let done = 0;
  let fetched = 0;
  // Files the manifest does not list (the other names a model folder may use) are not there: no request for them.
  const listed = new Set(manifest.files.map((f) => f.path));
  const folder = bytesFolder(
    modelUrl.replace(/\/$/, ''),
    async (path) => (listed.has(path) ? fetchFile(path) : undefined),
    async (path) => listed.has(path),
  );
  const fetchFile = async (path: string) => {
    const url = new URL(path, modelUrl).href;
    let file = await cache?.match(url);
    if (!file) {
      file = await fetch(url);
      if (!file.ok) throw new Error(`HTTP ${file.status} for ${url}`);
      fetched++;
      await cache?.put(url, file.clone());
    }
    const bytes = await readBody(file, (n) => onBytes(done + n, total));
    done += bytes.length;
    return bytes;
  };
  return { name: manifest.name, bytes: total, folder, source: () => (fetched === 0 && cache ? 'cache' : 'network') };
}

async function readBody(response: Response, onBytes: (n: number) => void): Promise<Uint8Array> {
  if (!response.body) return new Uint8Array(await response.arrayBuffer());
  const chunks: Uint8Array[] = [];
  let n = 0;
  const reader = response.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    n += value.length;
    onBytes(n);
  }
  const out = new Uint8Array(n);
  let at = 0;
  for (const c of chunks) (out.set(c, at), (at += c.length));
  return out;
}

/**
 * A folder the user picked (directory input), read in slices: SD 2.1's UNet (3.5 GB) is never one buffer. Paths
 * are relative to the picked folder.
 */
export function folderModel(files: readonly { path: string; file: File }[]): OpenedModel {
  // The directory input names files "<picked folder>/unet/config.json": drop the first segment.
  const byPath = new Map(files.map(({ path, file }) => [path.split('/').slice(1).join('/'), file]));
  const bytes = [...byPath.values()].reduce((n, f) => n + f.size, 0);
  const name = files[0]?.path.split('/')[0] ?? 'folder';
  const folder: ModelFolder = {
    where: (path) => `${name}/${path}`,
    has: async (path) => byPath.has(path),
    open: async (path) => {
      const file = byPath.get(path);
      return file && { name: `${name}/${path}`, size: file.size, read: async (offset, length) => new Uint8Array(await file.slice(offset, offset + length).arrayBuffer()) };
    },
  };
  return { name, bytes, folder, source: () => 'folder' };
}
