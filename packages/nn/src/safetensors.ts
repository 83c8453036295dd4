import { DTYPE_BYTES, fromFloat32, isStoredDtype, toFloat32, type FloatDtype, type StoredDtype } from './dtype.js';
import { NnError } from './errors.js';

/** Random-access bytes: a file (see `@codiff/nn/node`), a fetched buffer, a Blob… */
export interface ByteSource {
  readonly name: string;
  readonly size: number;
  read(offset: number, length: number): Promise<Uint8Array>;
  /** Release the underlying resource (file handle), if any. */
  close?(): Promise<void>;
}

export function bytesSource(bytes: Uint8Array, name = 'buffer'): ByteSource {
  return {
    name,
    size: bytes.length,
    read: async (offset, length) => bytes.subarray(offset, offset + length),
  };
}

export interface TensorInfo {
  readonly dtype: StoredDtype;
  readonly shape: readonly number[];
  /** Absolute byte range in the file. */
  readonly begin: number;
  readonly end: number;
}

/** A host-side float32 tensor in the checkpoint's own layout (PyTorch's, for reference checkpoints). */
export interface HostTensor {
  readonly shape: readonly number[];
  readonly data: Float32Array;
  /** How a reader found it stored (the data is float32 either way); absent for tensors made in memory. */
  readonly storedAs?: StoredDtype;
}

/** Headers larger than this are refused rather than parsed (the format's own readers use the same bound). */
const MAX_HEADER_BYTES = 100 * 1024 * 1024;

/** An open safetensors file: the header is parsed and validated; tensors are read one at a time on demand. */
export class SafetensorsFile {
  private constructor(
    readonly source: ByteSource,
    readonly tensors: ReadonlyMap<string, TensorInfo>,
    readonly metadata: Readonly<Record<string, string>>,
  ) {}

  static async open(source: ByteSource): Promise<SafetensorsFile> {
    const where = source.name;
    if (source.size < 8) throw new NnError(`${where}: not a safetensors file (${source.size} bytes)`);
    const lenBytes = await source.read(0, 8);
    const headerLength = Number(new DataView(lenBytes.buffer, lenBytes.byteOffset, 8).getBigUint64(0, true));
    if (headerLength > MAX_HEADER_BYTES || 8 + headerLength > source.size) {
      throw new NnError(`${where}: header length ${headerLength} does not fit the ${source.size}-byte file`);
    }
    let header: Record<string, unknown>;
    try {
      header = JSON.parse(new TextDecoder().decode(await source.read(8, headerLength)));
    } catch (e) {
      throw new NnError(`${where}: header is not valid JSON (${(e as Error).message})`);
    }
    if (typeof header !== 'object' || header === null || Array.isArray(header)) {
      throw new NnError(`${where}: header is not a JSON object`);
    }
    const dataStart = 8 + headerLength;
    const dataSize = source.size - dataStart;
    const tensors = new Map<string, TensorInfo>();
    let metadata: Record<string, string> = {};
    for (const [name, entry] of Object.entries(header)) {
      if (name === '__metadata__') {
        metadata = entry as Record<string, string>;
        continue;
      }
      const e = entry as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
      const bad = (why: string) => new NnError(`${where}: tensor '${name}': ${why}`);
      if (typeof e.dtype !== 'string') throw bad('missing dtype');
      if (!isStoredDtype(e.dtype)) throw bad(`dtype ${e.dtype} is not supported (${Object.keys(DTYPE_BYTES).join(', ')})`);
      if (!Array.isArray(e.shape) || !e.shape.every((d) => Number.isInteger(d) && d >= 0)) throw bad('invalid shape');
      const offsets = e.data_offsets;
      if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isInteger(o) && o >= 0)) {
        throw bad('invalid data_offsets');
      }
      const [b, en] = offsets as [number, number];
      const expected = (e.shape as number[]).reduce((a, d) => a * d, 1) * DTYPE_BYTES[e.dtype];
      if (en < b || en > dataSize) throw bad(`data_offsets [${b}, ${en}] outside the ${dataSize}-byte data section`);
      if (en - b !== expected) throw bad(`holds ${en - b} bytes, shape ${JSON.stringify(e.shape)} ${e.dtype} needs ${expected}`);
      tensors.set(name, { dtype: e.dtype, shape: e.shape as number[], begin: dataStart + b, end: dataStart + en });
    }
    return new SafetensorsFile(source, tensors, metadata);
  }

  async close(): Promise<void> {
    await this.source.close?.();
  }

  has(name: string): boolean {
    return this.tensors.has(name);
  }

  /** Read one tensor as float32 (F16/BF16/F64 converted). */
  async read(name: string): Promise<HostTensor> {
    const info = this.tensors.get(name);
    if (!info) throw new NnError(`${this.source.name}: no tensor '${name}'`);
    const bytes = await this.source.read(info.begin, info.end - info.begin);
    return { shape: info.shape, data: toFloat32(bytes, info.dtype), storedAs: info.dtype };
  }

  /** Read every tensor whose name passes `filter`. */
  async readAll(filter: (name: string) => boolean = () => true): Promise<Map<string, HostTensor>> {
    const out = new Map<string, HostTensor>();
    for (const name of this.tensors.keys()) if (filter(name)) out.set(name, await this.read(name));
    return out;
  }
}

export interface TensorToWrite {
  readonly shape: readonly number[];
  readonly data: Float32Array;
  /** Stored dtype (default F32). */
  readonly dtype?: FloatDtype;
}

/** The largest finite F16 value. */
const F16_MAX = 65504;

/**
 * F16 holds nothing beyond ±65504: a tensor asked for as F16 with a finite value outside that range (a BatchNorm
 * running variance can be 10⁵) is stored as F32 rather than as infinities.
 */
function storableDtype(data: Float32Array, dtype: FloatDtype): FloatDtype {
  if (dtype !== 'F16') return dtype;
  for (const v of data) if (Math.abs(v) > F16_MAX && Number.isFinite(v)) return 'F32';
  return dtype;
}

/**
 * Serialise tensors as safetensors: names sorted, contiguous data, header space-padded to 8 bytes. A tensor asked
 * for as F16 whose values exceed F16's range is stored as F32.
 */
export function writeSafetensors(tensors: Record<string, TensorToWrite>, metadata: Record<string, string> = {}): Uint8Array {
  const names = Object.keys(tensors).sort();
  const header: Record<string, unknown> = { __metadata__: metadata };
  const blobs: Uint8Array[] = [];
  let offset = 0;
  for (const name of names) {
    const t = tensors[name];
    const numel = t.shape.reduce((a, d) => a * d, 1);
    if (numel !== t.data.length) throw new NnError(`tensor '${name}': shape ${JSON.stringify(t.shape)} does not match ${t.data.length} values`);
    const dtype = storableDtype(t.data, t.dtype ?? 'F32');
    const bytes = fromFloat32(t.data, dtype);
    header[name] = { dtype, shape: t.shape, data_offsets: [offset, offset + bytes.length] };
    blobs.push(bytes);
    offset += bytes.length;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((8 + new TextEncoder().encode(json).length) % 8)) % 8);
  const headerBytes = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + headerBytes.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  let p = 8 + headerBytes.length;
  for (const b of blobs) {
    out.set(b, p);
    p += b.length;
  }
  return out;
}

/** A sharded checkpoint's `*.safetensors.index.json`: which file holds each tensor. */
export function parseShardIndex(json: string, where = 'index'): Map<string, string> {
  let parsed: { weight_map?: Record<string, unknown> };
  try {
    parsed = JSON.parse(json);
  } catch (e) {
    throw new NnError(`${where}: not valid JSON (${(e as Error).message})`);
  }
  if (!parsed.weight_map || typeof parsed.weight_map !== 'object') throw new NnError(`${where}: no weight_map`);
  const map = new Map<string, string>();
  for (const [name, file] of Object.entries(parsed.weight_map)) {
    if (typeof file !== 'string' || file.includes('/') || file.includes('\\')) throw new NnError(`${where}: bad file for '${name}'`);
    map.set(name, file);
  }
  return map;
}
