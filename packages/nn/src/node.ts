// Node-only helpers (file access). The main entry stays browser-safe.
import { open, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { NnError } from './errors.js';
import { readCheckpointIn, readCheckpointSource, type CheckpointFileContents, type ModelFolder } from './folder.js';
import { SafetensorsFile, type ByteSource, type HostTensor } from './safetensors.js';
import type { CheckpointLimits } from './torch-checkpoint.js';

/** A file read piecewise with positioned reads, so multi-GB checkpoints never sit whole in memory. */
export async function fileSource(path: string): Promise<ByteSource> {
  const source = await openFile(path);
  if (!source) throw new NnError(`${path}: no such file`);
  return source;
}

/** `fileSource`, or undefined when there is no such file. */
async function openFile(path: string): Promise<ByteSource | undefined> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'ENOENT') return undefined;
    throw new NnError(`${path}: ${err.message}`);
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

/** A folder on disk as a ModelFolder (what the browser-safe loaders read). */
export function diskFolder(dir: string): ModelFolder {
  return {
    open: (path) => openFile(join(dir, path)),
    has: (path) => stat(join(dir, path)).then((s) => s.isFile(), () => false),
    where: (path) => join(dir, path),
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
export function loadSafetensors(dir: string, name: string): Promise<Map<string, HostTensor>> {
  return readCheckpointIn(diskFolder(dir), name);
}

/**
 * A checkpoint of either kind, told apart by content: safetensors (8-byte header length, then a JSON header) or
 * a PyTorch checkpoint (zip or legacy pickle, read without running pickle code, within `limits`).
 */
export async function readCheckpointFile(path: string, limits: CheckpointLimits = {}): Promise<CheckpointFileContents> {
  return readCheckpointSource(await fileSource(path), limits);
}

/** The state dict of a safetensors or PyTorch checkpoint file (see readCheckpointFile). */
export async function readStateDictFile(path: string, limits: CheckpointLimits = {}): Promise<Map<string, HostTensor>> {
  return (await readCheckpointFile(path, limits)).tensors;
}
