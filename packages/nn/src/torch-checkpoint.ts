// Reading PyTorch checkpoints (`torch.save` files: .pth/.pt/.bin/.ckpt) without executing pickle code. The pickle
// stream is interpreted by a small virtual machine that knows only the opcodes torch.save emits and builds tensors
// through a fixed allow-list of constructors; any other global (the way a malicious pickle runs code) is refused.
import { DTYPE_BYTES, READ_ELEMENT, type StoredDtype } from './dtype.js';
import { NnError } from './errors.js';
import type { HostTensor } from './safetensors.js';

/** Element types of torch storages, by the storage class name pickled in the checkpoint. */
const STORAGE_TYPES: Record<string, StoredDtype> = {
  FloatStorage: 'F32',
  DoubleStorage: 'F64',
  HalfStorage: 'F16',
  BFloat16Storage: 'BF16',
  LongStorage: 'I64',
  IntStorage: 'I32',
  ShortStorage: 'I16',
  CharStorage: 'I8',
  ByteStorage: 'U8',
  BoolStorage: 'BOOL',
};

/** A pickled `torch.<Name>Storage` class. */
class StorageClass {
  constructor(readonly name: string) {}
}
/** A storage referenced by a persistent id; its bytes are found once the whole file is known. */
class StorageRef {
  constructor(
    readonly key: string,
    readonly type: string,
    readonly numel: number,
  ) {}
}
/** torch._utils._rebuild_tensor_v2's arguments. */
class TensorRef {
  constructor(
    readonly storage: StorageRef,
    readonly offset: number,
    readonly size: number[],
    readonly stride: number[],
  ) {}
}
/** Any other global the allow-list names, used only as a callable. */
class Callable {
  constructor(readonly name: string) {}
}

type Value = null | boolean | number | bigint | string | Uint8Array | Value[] | Map<Value, Value> | StorageClass | StorageRef | TensorRef | Callable | { mark: true };

const CALLABLES = new Set([
  'collections.OrderedDict',
  'torch._utils._rebuild_tensor_v2',
  'torch._utils._rebuild_tensor',
  'torch._utils._rebuild_parameter',
  'torch._utils._rebuild_parameter_with_state',
  'torch.Size',
]);

function resolveGlobal(module: string, name: string): Value {
  if (module === 'torch' && name in STORAGE_TYPES) return new StorageClass(name);
  const full = `${module}.${name}`;
  if (CALLABLES.has(full)) return new Callable(full);
  throw new NnError(`the checkpoint refers to ${full}, which is not part of a plain tensor checkpoint; refusing to run pickle code`);
}

function call(fn: Value, args: Value): Value {
  if (!(fn instanceof Callable) || !Array.isArray(args)) throw new NnError('malformed pickle: REDUCE without a known callable');
  switch (fn.name) {
    case 'collections.OrderedDict': {
      // OrderedDict() (then SETITEMS), or OrderedDict([(key, value), ...]) as Python 2-era torch.save wrote it.
      const map = new Map<Value, Value>();
      const pairs = args[0];
      if (Array.isArray(pairs)) {
        for (const pair of pairs) {
          if (!Array.isArray(pair) || pair.length !== 2) throw new NnError('malformed pickle: OrderedDict item is not a (key, value) pair');
          map.set(pair[0], pair[1]);
        }
      }
      return map;
    }
    case 'torch.Size':
      return (args[0] as Value[]) ?? [];
    case 'torch._utils._rebuild_parameter':
    case 'torch._utils._rebuild_parameter_with_state':
      return args[0];
    default: {
      // _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
      const [storage, offset, size, stride] = args;
      if (!(storage instanceof StorageRef) || !Array.isArray(size) || !Array.isArray(stride)) {
        throw new NnError('malformed pickle: bad tensor arguments');
      }
      return new TensorRef(storage, Number(offset), size.map(Number), stride.map(Number));
    }
  }
}

/**
 * Interpret one pickle starting at `pos`; return the object and the position after STOP. `persistentLoad` turns a
 * persistent id (torch's storage references) into a value.
 */
function unpickle(bytes: Uint8Array, pos: number, persistentLoad: (pid: Value) => Value): { value: Value; end: number } {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const stack: Value[] = [];
  const marks: number[] = [];
  const memo = new Map<number, Value>();
  const text = new TextDecoder();
  const need = (n: number) => {
    if (pos + n > bytes.length) throw new NnError('truncated pickle');
  };
  const take = (n: number) => {
    need(n);
    const out = bytes.subarray(pos, pos + n);
    pos += n;
    return out;
  };
  const u8 = () => take(1)[0];
  const u16 = () => (need(2), (pos += 2), view.getUint16(pos - 2, true));
  const u32 = () => (need(4), (pos += 4), view.getUint32(pos - 4, true));
  const u64 = () => (need(8), (pos += 8), Number(view.getBigUint64(pos - 8, true)));
  const line = () => {
    const end = bytes.indexOf(0x0a, pos);
    if (end < 0) throw new NnError('truncated pickle');
    const s = text.decode(bytes.subarray(pos, end));
    pos = end + 1;
    return s;
  };
  const pop = (): Value => {
    if (stack.length === 0) throw new NnError('malformed pickle: stack underflow');
    return stack.pop()!;
  };
  const popMark = (): Value[] => {
    const m = marks.pop();
    if (m === undefined) throw new NnError('malformed pickle: no MARK');
    return stack.splice(m);
  };
  const top = () => stack[stack.length - 1];
  const setItems = (target: Value, items: Value[]) => {
    if (!(target instanceof Map)) throw new NnError('malformed pickle: SETITEM on a non-dict');
    for (let i = 0; i + 1 < items.length; i += 2) target.set(items[i], items[i + 1]);
  };
  const append = (target: Value, items: Value[]) => {
    if (!Array.isArray(target)) throw new NnError('malformed pickle: APPEND on a non-list');
    for (const item of items) target.push(item);
  };
  const signedLong = (b: Uint8Array): number | bigint => {
    let v = 0n;
    for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
    if (b.length > 0 && b[b.length - 1] & 0x80) v -= 1n << BigInt(8 * b.length);
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  };

  for (;;) {
    const op = u8();
    switch (op) {
      case 0x80: // PROTO
        u8();
        break;
      case 0x95: // FRAME
        u64();
        break;
      case 0x2e: // STOP
        return { value: pop(), end: pos };
      case 0x28: // MARK
        marks.push(stack.length);
        break;
      case 0x7d: // EMPTY_DICT
        stack.push(new Map());
        break;
      case 0x5d: // EMPTY_LIST
      case 0x29: // EMPTY_TUPLE
        stack.push([]);
        break;
      case 0x4e: // NONE
        stack.push(null);
        break;
      case 0x88: // NEWTRUE
      case 0x89: // NEWFALSE
        stack.push(op === 0x88);
        break;
      case 0x4b: // BININT1
        stack.push(u8());
        break;
      case 0x4d: // BININT2
        stack.push(u16());
        break;
      case 0x4a: // BININT
        stack.push(u32() | 0);
        break;
      case 0x8a: // LONG1
        stack.push(signedLong(take(u8())));
        break;
      case 0x8b: // LONG4
        stack.push(signedLong(take(u32())));
        break;
      case 0x47: // BINFLOAT (big-endian)
        need(8);
        stack.push(view.getFloat64(pos, false));
        pos += 8;
        break;
      case 0x58: // BINUNICODE
        stack.push(text.decode(take(u32())));
        break;
      case 0x8c: // SHORT_BINUNICODE
        stack.push(text.decode(take(u8())));
        break;
      case 0x8d: // BINUNICODE8
        stack.push(text.decode(take(u64())));
        break;
      case 0x55: // SHORT_BINSTRING
        stack.push(text.decode(take(u8())));
        break;
      case 0x54: // BINSTRING
        stack.push(text.decode(take(u32())));
        break;
      case 0x43: // SHORT_BINBYTES
        stack.push(take(u8()).slice());
        break;
      case 0x42: // BINBYTES
        stack.push(take(u32()).slice());
        break;
      case 0x74: // TUPLE
        stack.push(popMark());
        break;
      case 0x85: // TUPLE1
        stack.push([pop()]);
        break;
      case 0x86: {
        // TUPLE2
        const b = pop();
        stack.push([pop(), b]);
        break;
      }
      case 0x87: {
        // TUPLE3
        const c = pop();
        const b = pop();
        stack.push([pop(), b, c]);
        break;
      }
      case 0x6c: // LIST
        stack.push(popMark());
        break;
      case 0x64: {
        // DICT
        const items = popMark();
        const d = new Map<Value, Value>();
        setItems(d, items);
        stack.push(d);
        break;
      }
      case 0x61: {
        // APPEND
        const v = pop();
        append(top(), [v]);
        break;
      }
      case 0x65: {
        // APPENDS
        const items = popMark();
        append(top(), items);
        break;
      }
      case 0x73: {
        // SETITEM
        const v = pop();
        const k = pop();
        setItems(top(), [k, v]);
        break;
      }
      case 0x75: {
        // SETITEMS
        const items = popMark();
        setItems(top(), items);
        break;
      }
      case 0x71: // BINPUT
        memo.set(u8(), top());
        break;
      case 0x72: // LONG_BINPUT
        memo.set(u32(), top());
        break;
      case 0x94: // MEMOIZE
        memo.set(memo.size, top());
        break;
      case 0x68: // BINGET
      case 0x6a: {
        // LONG_BINGET
        const i = op === 0x68 ? u8() : u32();
        if (!memo.has(i)) throw new NnError(`malformed pickle: memo ${i} unset`);
        stack.push(memo.get(i)!);
        break;
      }
      case 0x63: {
        // GLOBAL "module\nname\n"
        const module = line();
        stack.push(resolveGlobal(module, line()));
        break;
      }
      case 0x93: {
        // STACK_GLOBAL
        const name = pop();
        const module = pop();
        stack.push(resolveGlobal(String(module), String(name)));
        break;
      }
      case 0x52: {
        // REDUCE
        const args = pop();
        stack.push(call(pop(), args));
        break;
      }
      case 0x81: {
        // NEWOBJ
        const args = pop();
        stack.push(call(pop(), args));
        break;
      }
      case 0x62: // BUILD: object state (an OrderedDict's _metadata, a tensor's flags) carries no tensor data
        pop();
        break;
      case 0x51: // BINPERSID
        stack.push(persistentLoad(pop()));
        break;
      default:
        throw new NnError(`unsupported pickle opcode 0x${op.toString(16)} at byte ${pos - 1}`);
    }
  }
}

/** A torch storage persistent id: ('storage', <class>, key, location, numel[, view metadata]). */
function storageRef(pid: Value): StorageRef {
  if (!Array.isArray(pid) || pid[0] !== 'storage' || !(pid[1] instanceof StorageClass)) {
    throw new NnError('malformed checkpoint: unknown persistent id');
  }
  if (pid.length > 5 && pid[5] !== null) throw new NnError('storage views (legacy checkpoints of torch < 0.4) are not supported');
  return new StorageRef(String(pid[2]), pid[1].name, Number(pid[4]));
}

/** Bounds on what reading a checkpoint may allocate, so a small hostile file cannot exhaust memory. */
export interface CheckpointLimits {
  /** Most tensors, a tensor reached through n shared references counting n times. Default 20,000. */
  readonly maxTensors?: number;
  /** Most bytes of float32 output in all. Default: 8 × the file's size + 256 MiB (fp16 and int8 storages widen). */
  readonly maxBytes?: number;
  /** Most dict entries visited while collecting tensors, shared dicts once per visit. Default 1,000,000. */
  readonly maxObjects?: number;
}

export const DEFAULT_CHECKPOINT_LIMITS = { maxTensors: 20_000, maxObjects: 1_000_000 } as const;

const tooLarge = (message: string) => new NnError(message, 'TOO_LARGE');

/** A non-tensor leaf of a checkpoint (a rank, a list of module names), as JSON-like data. */
export type PlainValue = null | boolean | number | string | PlainValue[];

/** `value` as plain data, or undefined when it holds anything else (tensors, dicts, objects, bytes). */
function plain(value: Value): PlainValue | undefined {
  if (value === null || typeof value === 'boolean' || typeof value === 'number' || typeof value === 'string') return value;
  if (typeof value === 'bigint') return Number.isSafeInteger(Number(value)) ? Number(value) : undefined;
  if (Array.isArray(value)) {
    const items = value.map(plain);
    return items.every((v) => v !== undefined) ? (items as PlainValue[]) : undefined;
  }
  return undefined;
}

/**
 * Every tensor in a (possibly nested) dict, keyed by the dotted path, and the plain leaves (numbers, strings,
 * lists of them); other values are skipped. A dict shared by several parents is visited once per parent (that is
 * what its keys become), so visits are counted and bounded.
 */
function collect(root: Value, limits: Required<CheckpointLimits>): { refs: Map<string, TensorRef>; values: Map<string, PlainValue> } {
  const refs = new Map<string, TensorRef>();
  const values = new Map<string, PlainValue>();
  const onPath = new Set<Map<Value, Value>>();
  let visits = 0;
  const visit = (value: Value, prefix: string) => {
    if (value instanceof TensorRef) {
      refs.set(prefix, value);
      if (refs.size > limits.maxTensors) throw tooLarge(`more than ${limits.maxTensors} tensors (limit maxTensors)`);
    } else if (value instanceof Map) {
      if (onPath.has(value)) throw new NnError(`malformed checkpoint: the dict at '${prefix}' contains itself`);
      onPath.add(value);
      for (const [k, v] of value) {
        if (++visits > limits.maxObjects) {
          throw tooLarge(`more than ${limits.maxObjects} dict entries once shared references are expanded (limit maxObjects)`);
        }
        visit(v, prefix ? `${prefix}.${String(k)}` : String(k));
      }
      onPath.delete(value);
    } else {
      const p = plain(value);
      if (p !== undefined) values.set(prefix, p);
    }
  };
  visit(root, '');
  return { refs, values };
}

/** Element count of a tensor, after checking that its view stays inside its storage and does not expand it. */
function checkedNumel(t: TensorRef, storageBytes: number, key: string): number {
  const { size, stride, offset } = t;
  const natural = (n: number) => Number.isSafeInteger(n) && n >= 0;
  if (size.length !== stride.length || !size.every(natural) || !stride.every(natural) || !natural(offset)) {
    throw new NnError(`tensor '${key}' has an invalid shape, stride or offset`);
  }
  const numel = size.reduce((a, d) => a * d, 1);
  if (numel === 0) return 0;
  if (size.some((d, i) => d > 1 && stride[i] === 0)) {
    throw tooLarge(`tensor '${key}' is a stride-0 (broadcast) view of shape [${size.join(', ')}]; refusing to expand it`);
  }
  const span = size.reduce((last, d, i) => last + (d - 1) * stride[i], 0) + 1;
  if (!Number.isSafeInteger(numel) || numel > span) {
    throw tooLarge(`tensor '${key}' is an overlapping view (${numel} elements over ${span} storage elements); refusing to expand it`);
  }
  if ((offset + span) * DTYPE_BYTES[STORAGE_TYPES[t.storage.type]] > storageBytes) throw new NnError(`tensor '${key}' reaches past its storage`);
  return numel;
}

/** Read a tensor as float32, honouring offset and strides (non-contiguous tensors are gathered). */
function materialise(t: TensorRef, bytes: Uint8Array, numel: number): HostTensor {
  const dtype = STORAGE_TYPES[t.storage.type];
  const [read, size] = [READ_ELEMENT[dtype], DTYPE_BYTES[dtype]];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const data = new Float32Array(numel);
  const index = new Array<number>(t.size.length).fill(0);
  for (let i = 0; i < numel; i++) {
    let element = t.offset;
    for (let d = 0; d < index.length; d++) element += index[d] * t.stride[d];
    data[i] = read(view, element * size);
    for (let d = index.length - 1; d >= 0; d--) {
      if (++index[d] < t.size[d]) break;
      index[d] = 0;
    }
  }
  return { shape: t.size, data, storedAs: dtype };
}

/** What a checkpoint holds: its tensors (float32, torch layout) and its plain values, both by dotted path. */
export interface TorchCheckpointContents {
  readonly tensors: Map<string, HostTensor>;
  readonly values: Map<string, PlainValue>;
}

function finish(root: Value, storageBytes: (ref: StorageRef) => Uint8Array, fileBytes: number, options: CheckpointLimits, name: string): TorchCheckpointContents {
  const limits: Required<CheckpointLimits> = {
    ...DEFAULT_CHECKPOINT_LIMITS,
    maxBytes: 8 * fileBytes + 256 * 2 ** 20,
    ...options,
  };
  const { refs, values } = collect(root, limits);
  if (refs.size === 0) throw new NnError(`${name}: no tensors found (expected a state dict)`);
  // Every shape is checked and the total counted before anything is allocated.
  const sized = [...refs].map(([key, ref]) => {
    const bytes = storageBytes(ref.storage);
    return { key, ref, bytes, numel: checkedNumel(ref, bytes.length, key) };
  });
  const total = sized.reduce((sum, t) => sum + 4 * t.numel, 0);
  if (total > limits.maxBytes) throw tooLarge(`the tensors take ${total} bytes as float32, over the limit of ${limits.maxBytes} (maxBytes)`);
  return { tensors: new Map(sized.map(({ key, ref, bytes, numel }) => [key, materialise(ref, bytes, numel)])), values };
}

interface ZipEntry {
  readonly dataStart: number;
  /** Bytes stored in the archive, and bytes once inflated (equal for stored records). */
  readonly storedSize: number;
  readonly size: number;
  readonly method: number;
}

/** The entries of a zip archive (torch's format since 1.6 stores them uncompressed), zip64 included. */
function zipEntries(bytes: Uint8Array, name: string): Map<string, ZipEntry> {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let eocd = -1;
  for (let i = bytes.length - 22; i >= Math.max(0, bytes.length - 22 - 65535); i--) {
    if (view.getUint32(i, true) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw new NnError(`${name}: not a complete zip archive (end of central directory missing)`);
  let count = view.getUint16(eocd + 10, true);
  let dirOffset = view.getUint32(eocd + 16, true);
  if (dirOffset === 0xffffffff || count === 0xffff) {
    const locator = eocd - 20;
    if (locator < 0 || view.getUint32(locator, true) !== 0x07064b50) throw new NnError(`${name}: zip64 locator missing`);
    const eocd64 = Number(view.getBigUint64(locator + 8, true));
    count = Number(view.getBigUint64(eocd64 + 32, true));
    dirOffset = Number(view.getBigUint64(eocd64 + 48, true));
  }
  const entries = new Map<string, ZipEntry>();
  let p = dirOffset;
  for (let n = 0; n < count; n++) {
    if (p + 46 > bytes.length || view.getUint32(p, true) !== 0x02014b50) throw new NnError(`${name}: corrupt zip central directory`);
    const method = view.getUint16(p + 10, true);
    let storedSize = view.getUint32(p + 20, true);
    let size = view.getUint32(p + 24, true);
    const nameLength = view.getUint16(p + 28, true);
    const extraLength = view.getUint16(p + 30, true);
    const commentLength = view.getUint16(p + 32, true);
    let local = view.getUint32(p + 42, true);
    const entryName = new TextDecoder().decode(bytes.subarray(p + 46, p + 46 + nameLength));
    // zip64 extra field: the 64-bit values of those 32-bit fields that are saturated, in this order.
    for (let e = p + 46 + nameLength; e + 4 <= p + 46 + nameLength + extraLength; ) {
      const id = view.getUint16(e, true);
      const length = view.getUint16(e + 2, true);
      if (id === 0x0001) {
        let q = e + 4;
        if (size === 0xffffffff) (size = Number(view.getBigUint64(q, true))), (q += 8);
        if (storedSize === 0xffffffff) (storedSize = Number(view.getBigUint64(q, true))), (q += 8);
        if (local === 0xffffffff) local = Number(view.getBigUint64(q, true));
      }
      e += 4 + length;
    }
    if (local + 30 > bytes.length || view.getUint32(local, true) !== 0x04034b50) throw new NnError(`${name}: corrupt zip entry ${entryName}`);
    const dataStart = local + 30 + view.getUint16(local + 26, true) + view.getUint16(local + 28, true);
    if (dataStart + storedSize > bytes.length) throw new NnError(`${name}: zip entry ${entryName} is truncated`);
    entries.set(entryName, { dataStart, storedSize, size, method });
    p += 46 + nameLength + extraLength + commentLength;
  }
  return entries;
}

function readZipCheckpoint(bytes: Uint8Array, name: string, limits: CheckpointLimits): TorchCheckpointContents {
  const entries = zipEntries(bytes, name);
  const pkl = [...entries.keys()].find((k) => k.endsWith('/data.pkl') && k.split('/').length === 2);
  if (!pkl) throw new NnError(`${name}: a zip file without <archive>/data.pkl is not a torch checkpoint`);
  const archive = pkl.slice(0, -'data.pkl'.length);
  const record = (path: string) => {
    const e = entries.get(path);
    if (!e) throw new NnError(`${name}: missing record ${path}`);
    if (e.method !== 0 || e.storedSize !== e.size) {
      throw new NnError(
        `${name}: record ${path} is compressed (method ${e.method}, ${e.storedSize} bytes inflating to ${e.size}); torch.save stores records uncompressed, so this file was not written by torch`,
      );
    }
    return bytes.subarray(e.dataStart, e.dataStart + e.size);
  };
  const { value } = unpickle(record(pkl), 0, storageRef);
  return finish(root(value), (ref) => record(`${archive}data/${ref.key}`), bytes.length, limits, name);
}

/** The pre-1.6 format: magic, protocol and system-info pickles, the object, the storage keys, then raw storages. */
function readLegacyCheckpoint(bytes: Uint8Array, name: string, limits: CheckpointLimits): TorchCheckpointContents {
  const none = () => {
    throw new NnError('malformed checkpoint: storage reference in a header pickle');
  };
  const magic = unpickle(bytes, 0, none);
  if (magic.value !== 0x1950a86a20f9469cfc6cn) throw new NnError(`${name}: not a torch checkpoint (bad magic number)`);
  const protocol = unpickle(bytes, magic.end, none);
  if (protocol.value !== 1001) throw new NnError(`${name}: unsupported legacy protocol ${String(protocol.value)}`);
  const sysInfo = unpickle(bytes, protocol.end, none);
  if (sysInfo.value instanceof Map && sysInfo.value.get('little_endian') === false) throw new NnError(`${name}: big-endian checkpoints are not supported`);
  const types = new Map<string, string>();
  const object = unpickle(bytes, sysInfo.end, (pid) => {
    const ref = storageRef(pid);
    types.set(ref.key, ref.type);
    return ref;
  });
  const keys = unpickle(bytes, object.end, none);
  if (!Array.isArray(keys.value)) throw new NnError(`${name}: malformed storage key list`);
  const storages = new Map<string, Uint8Array>();
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = keys.end;
  for (const key of keys.value.map(String)) {
    if (pos + 8 > bytes.length) throw new NnError(`${name}: truncated: storage ${key}'s header at byte ${pos} is past the end (${bytes.length} bytes)`);
    const numel = Number(view.getBigInt64(pos, true));
    if (numel < 0) throw new NnError(`${name}: storage ${key} has a negative size`);
    const typeName = types.get(key);
    if (!typeName) throw new NnError(`${name}: storage ${key} is listed but never referenced`);
    const size = numel * DTYPE_BYTES[STORAGE_TYPES[typeName]];
    if (pos + 8 + size > bytes.length) {
      throw new NnError(`${name}: truncated: storage ${key} needs bytes ${pos + 8}..${pos + 8 + size}, the file ends at byte ${bytes.length}`);
    }
    storages.set(key, bytes.subarray(pos + 8, pos + 8 + size));
    pos += 8 + size;
  }
  return finish(root(object.value), (ref) => {
    const s = storages.get(ref.key);
    if (!s) throw new NnError(`${name}: storage ${ref.key} missing`);
    return s;
  }, bytes.length, limits, name);
}

/** Training checkpoints often wrap the weights: use `state_dict` / `model` / `params_ema` / `params` when present. */
function root(value: Value): Value {
  if (value instanceof Map) {
    for (const k of ['state_dict', 'model', 'params_ema', 'params']) {
      const inner = value.get(k);
      if (inner instanceof Map) return inner;
    }
  }
  return value;
}

/**
 * The tensors of a PyTorch checkpoint written by `torch.save` (zip format of torch ≥ 1.6, or the older stream
 * format), as float32 in torch layout, keyed by their state-dict names (nested dicts joined with '.'; a top-level
 * `state_dict`, `model`, `params_ema` or `params` entry is unwrapped). No pickle code is executed: only tensor
 * and dict constructors are accepted, and anything else is a NnError. What the file may make us allocate is
 * bounded by `limits` (tensor count, shared-reference expansion, output bytes, no stride-0 or overlapping views);
 * a refusal is an NnError with code 'TOO_LARGE' that names the file and the limit.
 */
export function readTorchCheckpoint(bytes: Uint8Array, name = 'checkpoint', limits: CheckpointLimits = {}): Map<string, HostTensor> {
  return readTorchCheckpointContents(bytes, name, limits).tensors;
}

/**
 * As `readTorchCheckpoint`, with the checkpoint's plain values too (numbers, strings and lists of them, e.g. the
 * ranks and module lists a training checkpoint stores beside its state dicts).
 */
export function readTorchCheckpointContents(bytes: Uint8Array, name = 'checkpoint', limits: CheckpointLimits = {}): TorchCheckpointContents {
  try {
    if (bytes.length >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b && bytes[2] === 0x03 && bytes[3] === 0x04) {
      return readZipCheckpoint(bytes, name, limits);
    }
    if (bytes.length >= 2 && bytes[0] === 0x80) return readLegacyCheckpoint(bytes, name, limits);
  } catch (e) {
    if (!(e instanceof NnError)) throw new NnError(`${name}: corrupt checkpoint (${(e as Error).message})`);
    throw e.message.startsWith(name) ? e : new NnError(`${name}: ${e.message}`, e.code);
  }
  throw new NnError(`${name}: not a PyTorch checkpoint (neither a torch zip archive nor a pickle stream)`);
}
