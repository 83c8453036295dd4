// Node-only helpers (file access). The main entry stays browser-safe.
import { open, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { NnError } from './errors.js';
import { parseShardIndex, SafetensorsFile, type ByteSource, type HostTensor } from './safetensors.js';

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

/**
 * Load all tensors of a checkpoint directory entry: `name.safetensors`, or the shards listed in
 * `name.safetensors.index.json`.
 */
export async function loadSafetensors(dir: string, name: string): Promise<Map<string, HostTensor>> {
  const single = join(dir, `${name}.safetensors`);
  const indexPath = join(dir, `${name}.safetensors.index.json`);
  let index: string | undefined;
  try {
    index = await readFile(indexPath, 'utf8');
  } catch {
    const file = await openSafetensorsFile(single);
    try {
      return await file.readAll();
    } finally {
      await file.close();
    }
  }
  const map = parseShardIndex(index, indexPath);
  const out = new Map<string, HostTensor>();
  for (const shardName of new Set(map.values())) {
    const shard = await openSafetensorsFile(join(dir, shardName));
    try {
      for (const [tensor, f] of map) if (f === shardName) out.set(tensor, await shard.read(tensor));
    } finally {
      await shard.close();
    }
  }
  return out;
}
