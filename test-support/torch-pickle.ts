// Writes legacy-format (torch < 1.6) `torch.save` files by hand, for tests that need checkpoints torch would
// never produce: shared-reference bombs, cycles, stride-0 views. Pickle protocol 2, the opcodes torch.save uses.

/** A pickle under construction: the ops append opcodes, the result is `bytes()`. */
export class Pickle {
  private readonly out: number[] = [0x80, 2];

  private u32(n: number) {
    this.out.push(n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff);
  }
  str(s: string): this {
    const b = new TextEncoder().encode(s);
    this.out.push(0x58);
    this.u32(b.length);
    this.out.push(...b);
    return this;
  }
  int(n: number): this {
    this.out.push(0x4a);
    this.u32(n);
    return this;
  }
  none(): this {
    this.out.push(0x4e);
    return this;
  }
  bool(v: boolean): this {
    this.out.push(v ? 0x88 : 0x89);
    return this;
  }
  mark(): this {
    this.out.push(0x28);
    return this;
  }
  tuple(): this {
    this.out.push(0x74);
    return this;
  }
  emptyDict(): this {
    this.out.push(0x7d);
    return this;
  }
  setItems(): this {
    this.out.push(0x75);
    return this;
  }
  put(i: number): this {
    this.out.push(0x72);
    this.u32(i);
    return this;
  }
  get(i: number): this {
    this.out.push(0x6a);
    this.u32(i);
    return this;
  }
  global(module: string, name: string): this {
    this.out.push(0x63, ...new TextEncoder().encode(`${module}\n${name}\n`));
    return this;
  }
  ints(values: readonly number[]): this {
    this.mark();
    for (const v of values) this.int(v);
    return this.tuple();
  }
  /** `_rebuild_tensor_v2(storage, offset, size, stride, False, None)` over a float storage. */
  tensor(storageKey: string, storageNumel: number, size: readonly number[], stride: readonly number[], offset = 0): this {
    this.global('torch._utils', '_rebuild_tensor_v2').mark();
    this.mark().str('storage').global('torch', 'FloatStorage').str(storageKey).str('cpu').int(storageNumel).none().tuple();
    this.out.push(0x51); // BINPERSID
    this.int(offset).ints(size).ints(stride).bool(false).none().tuple();
    this.out.push(0x52); // REDUCE
    return this;
  }
  bytes(): Uint8Array {
    return Uint8Array.from([...this.out, 0x2e]);
  }
}

const MAGIC = [0x80, 2, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e];

/**
 * A legacy checkpoint file: magic, protocol 1001, system info, the object pickle, the storage keys, then each
 * storage as int64 element count + little-endian float32 data.
 */
export function legacyCheckpoint(object: Pickle, storages: Record<string, Float32Array>): Uint8Array {
  const keys = new Pickle().mark();
  for (const k of Object.keys(storages)) keys.str(k);
  keys.tuple();
  const sysInfo = new Pickle().emptyDict().mark().str('little_endian').bool(true).setItems();
  const parts: Uint8Array[] = [Uint8Array.from(MAGIC), new Pickle().int(1001).bytes(), sysInfo.bytes(), object.bytes(), keys.bytes()];
  for (const data of Object.values(storages)) {
    const head = new DataView(new ArrayBuffer(8));
    head.setBigInt64(0, BigInt(data.length), true);
    parts.push(new Uint8Array(head.buffer), new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  }
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) out.set(p, (at += p.length) - p.length);
  return out;
}

/**
 * "Billion laughs": level 0 is `{w: tensor}` (or `{w: 0}` with `leaf: 'int'`), and every further level is a dict
 * whose two entries are the previous level, shared through the memo. A few hundred bytes describe 2^levels leaves.
 */
export function sharedDictBomb(levels: number, leaf: 'tensor' | 'int' = 'tensor'): Uint8Array {
  const p = new Pickle().emptyDict().put(0).mark().str('w');
  if (leaf === 'tensor') p.tensor('0', 1, [1], [1]);
  else p.int(0);
  p.setItems();
  for (let level = 1; level <= levels; level++) p.emptyDict().put(level).mark().str('a').get(level - 1).str('b').get(level - 1).setItems();
  return legacyCheckpoint(p, leaf === 'tensor' ? { '0': Float32Array.of(1) } : {});
}

/** `count` tensors of `shape` with all strides 0, each over a one-element storage (about 100 bytes each). */
export function strideZeroCheckpoint(count: number, shape: readonly number[]): Uint8Array {
  const p = new Pickle().emptyDict().mark();
  const storages: Record<string, Float32Array> = {};
  for (let i = 0; i < count; i++) {
    p.str(`t${i}`).tensor(String(i), 1, shape, shape.map(() => 0));
    storages[String(i)] = Float32Array.of(1);
  }
  return legacyCheckpoint(p.setItems(), storages);
}
