// Model folders read by path, wherever the files are: the disk in Node (`diskFolder` of the /node entry), the
// network (fetch) or files a user picked in a browser. Loading code is written once against this.
import { NnError } from './errors.js';
import type { LoadReport, Module } from './module.js';
import { bytesSource, parseShardIndex, SafetensorsFile, type ByteSource, type HostTensor } from './safetensors.js';
import { readTorchCheckpointContents, type CheckpointLimits, type TorchCheckpointContents } from './torch-checkpoint.js';

export interface ModelFolder {
  /** The file at `path` ('unet/config.json') for positioned reads, or undefined when the folder has none. */
  open(path: string): Promise<ByteSource | undefined>;
  /** Whether the folder has a file at `path`, without reading it (over the network a listing answers, not a download). */
  has(path: string): Promise<boolean>;
  /** How messages name a file of the folder (its full path on disk, its URL). */
  where(path: string): string;
}

/**
 * Files held in memory, or read whole by a function (fetch): `read` resolves undefined for a missing file. `has`
 * tells without reading (a manifest's list); by default a file exists when `read` finds it.
 */
export function bytesFolder(
  name: string,
  read: (path: string) => Promise<Uint8Array | undefined>,
  has: (path: string) => Promise<boolean> = async (path) => (await read(path)) !== undefined,
): ModelFolder {
  const where = (path: string) => `${name}/${path}`;
  return { where, has, open: async (path) => ((bytes) => bytes && bytesSource(bytes, where(path)))(await read(path)) };
}

/** The folder `path/` inside `folder` (a diffusers model's `unet/`). */
export const subfolder = (folder: ModelFolder, path: string): ModelFolder => ({
  open: (p) => folder.open(`${path}/${p}`),
  has: (p) => folder.has(`${path}/${p}`),
  where: (p) => folder.where(`${path}/${p}`),
});

/** Open a file that must exist: a missing one is named. */
export async function openRequired(folder: ModelFolder, path: string): Promise<ByteSource> {
  const source = await folder.open(path);
  if (!source) throw new NnError(`${folder.where(path)}: no such file`);
  return source;
}

/** A file of the folder read whole (closed again). */
export async function readFolderFile(folder: ModelFolder, path: string): Promise<Uint8Array> {
  const source = await openRequired(folder, path);
  try {
    return await source.read(0, source.size);
  } finally {
    await source.close?.();
  }
}

/** A JSON file of the folder; missing or malformed is an NnError naming it. */
export async function readFolderJson(folder: ModelFolder, path: string): Promise<Record<string, unknown>> {
  const bytes = await readFolderFile(folder, path);
  try {
    return JSON.parse(new TextDecoder().decode(bytes)) as Record<string, unknown>;
  } catch (e) {
    throw new NnError(`${folder.where(path)}: not JSON (${(e as Error).message})`);
  }
}

/**
 * `name.safetensors`, or the shards listed in `name.safetensors.index.json`, opened (headers only) with a map
 * from tensor name to the file holding it. Close the files when done.
 */
export async function openCheckpointIn(folder: ModelFolder, name: string): Promise<{ files: SafetensorsFile[]; where: Map<string, SafetensorsFile> }> {
  const indexPath = `${name}.safetensors.index.json`;
  if (!(await folder.has(indexPath))) {
    const file = await SafetensorsFile.open(await openRequired(folder, `${name}.safetensors`));
    return { files: [file], where: new Map([...file.tensors.keys()].map((k) => [k, file])) };
  }
  const map = parseShardIndex(new TextDecoder().decode(await readFolderFile(folder, indexPath)), folder.where(indexPath));
  const files = new Map<string, SafetensorsFile>();
  try {
    for (const shard of new Set(map.values())) files.set(shard, await SafetensorsFile.open(await openRequired(folder, shard)));
  } catch (e) {
    for (const f of files.values()) await f.close();
    throw e;
  }
  const where = new Map<string, SafetensorsFile>();
  for (const [tensor, shard] of map) {
    const f = files.get(shard)!;
    if (!f.has(tensor)) {
      for (const opened of files.values()) await opened.close();
      throw new NnError(`${folder.where(indexPath)}: ${tensor} is not in ${shard}`);
    }
    where.set(tensor, f);
  }
  return { files: [...files.values()], where };
}

/** Every tensor of `name.safetensors` (or its shards) in the folder, in memory. */
export async function readCheckpointIn(folder: ModelFolder, name: string): Promise<Map<string, HostTensor>> {
  const { files, where } = await openCheckpointIn(folder, name);
  try {
    const out = new Map<string, HostTensor>();
    for (const [key, file] of where) out.set(key, await file.read(key));
    return out;
  } finally {
    for (const f of files) await f.close();
  }
}

/**
 * Load a checkpoint into `module` one tensor at a time, so peak memory stays near one tensor beyond the model.
 * Keys and shapes are checked against the headers first (strict: any mismatch throws, naming the keys).
 * `rename` maps checkpoint keys to the module's (e.g. old diffusers attention names); `skip` leaves checkpoint keys
 * out (e.g. the parts a smaller module does not have).
 */
export async function loadModuleWeightsFrom(
  module: Module,
  folder: ModelFolder,
  name: string,
  options: { rename?: (key: string) => string; skip?: (key: string) => boolean } = {},
): Promise<LoadReport> {
  const { files, where } = await openCheckpointIn(folder, name);
  try {
    const rename = options.rename ?? ((k: string) => k);
    const keys = [...where.keys()].filter((k) => !options.skip?.(k));
    const byModuleKey = new Map(keys.map((k) => [rename(k), k]));
    // Check the whole key set, every shape and dtype from the headers before reading any data.
    const shapes = new Map([...byModuleKey].map(([mk, ck]) => { const info = where.get(ck)!.tensors.get(ck)!; return [mk, { shape: info.shape, storedAs: info.dtype }]; }));
    module.checkStateDict(shapes);
    const params = new Map(module.namedParameters());
    const loaded: string[] = [];
    for (const [moduleKey, checkpointKey] of byModuleKey) {
      params.get(moduleKey)!.assign(await where.get(checkpointKey)!.read(checkpointKey));
      loaded.push(moduleKey);
    }
    return { loaded, missing: [], unexpected: [], shapeMismatches: [], dtypeMismatches: [] };
  } finally {
    for (const f of files) await f.close();
  }
}

/** A checkpoint file's contents: tensors, a torch file's plain values, a safetensors file's metadata. */
export interface CheckpointFileContents extends TorchCheckpointContents {
  readonly format: 'safetensors' | 'torch';
  readonly metadata: Readonly<Record<string, string>>;
}

/**
 * A checkpoint of either kind, told apart by content: safetensors (8-byte header length, then a JSON header) or
 * a PyTorch checkpoint (zip or legacy pickle, read without running pickle code, within `limits`). Closes `source`.
 */
export async function readCheckpointSource(source: ByteSource, limits: CheckpointLimits = {}): Promise<CheckpointFileContents> {
  try {
    const head = await source.read(0, Math.min(9, source.size));
    if (head.length === 9 && head[8] === 0x7b /* '{' */ && head[4] === 0 && head[5] === 0 && head[6] === 0 && head[7] === 0) {
      const file = await SafetensorsFile.open(source);
      return { format: 'safetensors', tensors: await file.readAll(), values: new Map(), metadata: file.metadata };
    }
    return { format: 'torch', ...readTorchCheckpointContents(await source.read(0, source.size), source.name, limits), metadata: {} };
  } finally {
    await source.close?.();
  }
}
