// Node-only helpers (file access). The main entry stays browser-safe.
import { open, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { NnError } from './errors.js';
import type { LoadReport, Module } from './module.js';
import { parseShardIndex, SafetensorsFile, type ByteSource, type HostTensor } from './safetensors.js';
import { readTorchCheckpointContents, type CheckpointLimits, type TorchCheckpointContents } from './torch-checkpoint.js';

/** A file read piecewise with positioned reads, so multi-GB checkpoints never sit whole in memory. */
export async function fileSource(path: string): Promise<ByteSource> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new NnError(err.code === 'ENOENT' ? `${path}: no such file` : `${path}: ${err.message}`);
  }
  const { size } = await handle.stat();
  return {
    name: path,
    size,
    read: async (offset, length) => {
      const buf = new Uint8Array(length);
      const { bytesRead } = await handle.read(buf, 0, length, offset);
      if (bytesRead !== length) throw new NnError(`${path}: short read at ${offset}`);
      return buf;
    },
    close: () => handle.close(),
  };
}

export async function openSafetensorsFile(path: string): Promise<SafetensorsFile> {
  return SafetensorsFile.open(await fileSource(path));
}

/** Read the tensors of one safetensors file (those whose names pass `keep`, default all) into memory. */
export async function readSafetensorsFile(path: string, keep?: (name: string) => boolean): Promise<Map<string, HostTensor>> {
  const file = await openSafetensorsFile(path);
  try {
    return await file.readAll(keep);
  } finally {
    await file.close();
  }
}

/** Read every tensor of `name.safetensors` (or its shards) in `dir` into memory. */
export async function loadSafetensors(dir: string, name: string): Promise<Map<string, HostTensor>> {
  const { files, where } = await openCheckpoint(dir, name);
  try {
    const out = new Map<string, HostTensor>();
    for (const [key, file] of where) out.set(key, await file.read(key));
    return out;
  } finally {
    for (const f of files) await f.close();
  }
}

/**
 * `name.safetensors`, or the shards listed in `name.safetensors.index.json`, opened (headers only) with a map
 * from tensor name to the file holding it. Close the files when done.
 */
export async function openCheckpoint(dir: string, name: string): Promise<{ files: SafetensorsFile[]; where: Map<string, SafetensorsFile> }> {
  const indexPath = join(dir, `${name}.safetensors.index.json`);
  let index: string | undefined;
  try {
    index = await readFile(indexPath, 'utf8');
  } catch {
    const file = await openSafetensorsFile(join(dir, `${name}.safetensors`));
    return { files: [file], where: new Map([...file.tensors.keys()].map((k) => [k, file])) };
  }
  const map = parseShardIndex(index, indexPath);
  const files = new Map<string, SafetensorsFile>();
  for (const shard of new Set(map.values())) files.set(shard, await openSafetensorsFile(join(dir, shard)));
  const where = new Map<string, SafetensorsFile>();
  for (const [tensor, shard] of map) {
    const f = files.get(shard)!;
    if (!f.has(tensor)) throw new NnError(`${indexPath}: ${tensor} is not in ${shard}`);
    where.set(tensor, f);
  }
  return { files: [...files.values()], where };
}

/**
 * Load a checkpoint into `module` one tensor at a time, so peak memory stays near one tensor beyond the model.
 * Keys and shapes are checked against the headers first (strict: any mismatch throws, naming the keys).
 * `rename` maps checkpoint keys to the module's (e.g. old diffusers attention names); `skip` leaves checkpoint keys
 * out (e.g. the parts a smaller module does not have).
 */
export async function loadModuleWeights(
  module: Module,
  dir: string,
  name: string,
  options: { rename?: (key: string) => string; skip?: (key: string) => boolean } = {},
): Promise<LoadReport> {
  const { files, where } = await openCheckpoint(dir, name);
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
 * a PyTorch checkpoint (zip or legacy pickle, read without running pickle code, within `limits`).
 */
export async function readCheckpointFile(path: string, limits: CheckpointLimits = {}): Promise<CheckpointFileContents> {
  const source = await fileSource(path);
  try {
    const head = await source.read(0, Math.min(9, source.size));
    if (head.length === 9 && head[8] === 0x7b /* '{' */ && head[4] === 0 && head[5] === 0 && head[6] === 0 && head[7] === 0) {
      const file = await SafetensorsFile.open(source);
      return { format: 'safetensors', tensors: await file.readAll(), values: new Map(), metadata: file.metadata };
    }
    return { format: 'torch', ...readTorchCheckpointContents(await source.read(0, source.size), path, limits), metadata: {} };
  } finally {
    await source.close?.();
  }
}

/** The state dict of a safetensors or PyTorch checkpoint file (see readCheckpointFile). */
export async function readStateDictFile(path: string, limits: CheckpointLimits = {}): Promise<Map<string, HostTensor>> {
  return (await readCheckpointFile(path, limits)).tensors;
}
