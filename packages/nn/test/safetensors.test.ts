import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { bytesSource, floatToHalf, halfToFloat, NnError, SafetensorsFile, writeSafetensors } from '../src/index.js';
import { loadSafetensors, openSafetensorsFile } from '../src/node.js';
import { golden } from '../../../test-support/golden.js';

describe('safetensors reader on the golden files', () => {
  it('reads F32 weights with diffusers keys', async () => {
    const f = await openSafetensorsFile(golden('vae-tiny', 'weights.safetensors'));
    expect(f.tensors.size).toBe(180);
    const w = await f.read('encoder.conv_in.weight');
    expect(w.shape).toEqual([32, 3, 3, 3]);
    expect(w.data.length).toBe(32 * 27);
    expect(w.data.some((v) => v !== 0)).toBe(true);
    await f.close();
  });

  it('reads F64 references and F16 weights as float32', async () => {
    const cases = await openSafetensorsFile(golden('vae-tiny', 'cases.safetensors'));
    expect(cases.tensors.get('encA.mean_f64')?.dtype).toBe('F64');
    const [m32, m64] = [await cases.read('encA.mean'), await cases.read('encA.mean_f64')];
    for (let i = 0; i < m32.data.length; i++) expect(Math.abs(m32.data[i] - m64.data[i])).toBeLessThan(1e-5);
    await cases.close();
    const vgg = await openSafetensorsFile(golden('dists-lpips', 'vgg16.safetensors'));
    const name = [...vgg.tensors.keys()].find((k) => k.endsWith('.weight'))!;
    expect(vgg.tensors.get(name)?.dtype).toBe('F16');
    const w = await vgg.read(name);
    // Every F16 value converts exactly: re-encoding gives the same half.
    for (const v of w.data.subarray(0, 1000)) expect(halfToFloat(floatToHalf(v))).toBe(v);
    await vgg.close();
  });
});

describe('safetensors writer', () => {
  it('round-trips F32, F16 and BF16 with sorted names and an 8-byte aligned header', async () => {
    const data = Float32Array.from({ length: 24 }, (_, i) => (i - 12) / 7);
    const bytes = writeSafetensors(
      { 'b.weight': { shape: [2, 3, 4], data }, 'a.half': { shape: [24], data, dtype: 'F16' }, 'c.bf': { shape: [4, 6], data, dtype: 'BF16' } },
      { format: 'pt' },
    );
    const headerLength = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect((8 + headerLength) % 8).toBe(0);
    const f = await SafetensorsFile.open(bytesSource(bytes));
    expect([...f.tensors.keys()]).toEqual(['a.half', 'b.weight', 'c.bf']);
    expect(f.metadata).toEqual({ format: 'pt' });
    expect((await f.read('b.weight')).data).toEqual(data);
    const half = (await f.read('a.half')).data;
    const bf = (await f.read('c.bf')).data;
    for (let i = 0; i < 24; i++) {
      expect(Math.abs(half[i] - data[i])).toBeLessThanOrEqual(Math.abs(data[i]) * 2 ** -11 + 1e-7);
      expect(Math.abs(bf[i] - data[i])).toBeLessThanOrEqual(Math.abs(data[i]) * 2 ** -8);
    }
  });

  it('stores a tensor asked for as F16 as F32 when its values exceed F16’s range (no infinities)', async () => {
    const variance = new Float32Array([0.5, 65504, 125960.75]);
    const bytes = writeSafetensors({ 'bn.running_var': { shape: [3], data: variance, dtype: 'F16' }, 'bn.weight': { shape: [2], data: new Float32Array([1, -65504]), dtype: 'F16' } });
    const f = await SafetensorsFile.open(bytesSource(bytes));
    expect(f.tensors.get('bn.running_var')!.dtype).toBe('F32');
    expect((await f.read('bn.running_var')).data).toEqual(variance);
    expect(f.tensors.get('bn.weight')!.dtype).toBe('F16');
    expect([...(await f.read('bn.weight')).data]).toEqual([1, -65504]);
  });

  it('converts every finite half exactly both ways', () => {
    for (let h = 0; h < 0x10000; h++) {
      const v = halfToFloat(h);
      if (Number.isNaN(v)) continue;
      expect(floatToHalf(v)).toBe(h);
    }
  });
});

describe('safetensors validation', () => {
  const valid = writeSafetensors({ x: { shape: [2, 2], data: new Float32Array([1, 2, 3, 4]) } });
  const header = (json: string) => {
    const body = new TextEncoder().encode(json);
    const out = new Uint8Array(8 + body.length + 16);
    new DataView(out.buffer).setBigUint64(0, BigInt(body.length), true);
    out.set(body, 8);
    return out;
  };
  const rejects = async (bytes: Uint8Array, message: RegExp) => {
    await expect(SafetensorsFile.open(bytesSource(bytes, 'bad.safetensors'))).rejects.toThrow(message);
    await expect(SafetensorsFile.open(bytesSource(bytes))).rejects.toBeInstanceOf(NnError);
  };

  it('rejects truncated files, absurd header lengths and non-JSON headers', async () => {
    await rejects(valid.subarray(0, 5), /not a safetensors file/);
    await rejects(valid.subarray(0, 20), /header length/);
    const huge = valid.slice();
    new DataView(huge.buffer).setBigUint64(0, 1n << 40n, true);
    await rejects(huge, /header length/);
    await rejects(header('{not json'), /not valid JSON/);
  });

  it('rejects bad dtypes, shapes and offsets, naming the tensor', async () => {
    await rejects(header('{"t":{"dtype":"F8_E4M3","shape":[2],"data_offsets":[0,2]}}'), /tensor 't': dtype F8_E4M3 is not supported/);
    await rejects(header('{"t":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}'), /tensor 't': invalid shape/);
    await rejects(header('{"t":{"dtype":"F32","shape":[2],"data_offsets":[0,64]}}'), /outside the 16-byte data section/);
    await rejects(header('{"t":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}'), /needs 12/);
  });

  it('reads integer tensors as float32 (BatchNorm num_batches_tracked is I64 in PyTorch state dicts)', async () => {
    const cave = await openSafetensorsFile(golden('cave', 'weights.safetensors'));
    const tracked = [...cave.tensors].filter(([name]) => name.endsWith('num_batches_tracked'));
    expect(tracked.length).toBeGreaterThan(0);
    for (const [name, info] of tracked) {
      expect(info.dtype, name).toBe('I64');
      const t = await cave.read(name);
      expect([t.shape, Array.from(t.data)]).toEqual([[], [1]]);
    }
    await cave.close();
    const ints = (dtype: string, bytes: number[]) => {
      const body = `{"t":{"dtype":"${dtype}","shape":[${bytes.length / { I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 }[dtype]!}],"data_offsets":[0,${bytes.length}]}}`;
      const head = new TextEncoder().encode(body.padEnd(Math.ceil(body.length / 8) * 8));
      const file = new Uint8Array(8 + head.length + bytes.length);
      new DataView(file.buffer).setBigUint64(0, BigInt(head.length), true);
      file.set(head, 8);
      file.set(bytes, 8 + head.length);
      return SafetensorsFile.open(bytesSource(file, 'ints.safetensors')).then((f) => f.read('t'));
    };
    expect(Array.from((await ints('I32', [255, 255, 255, 255, 2, 0, 0, 0])).data)).toEqual([-1, 2]);
    expect(Array.from((await ints('I16', [0xfe, 0xff])).data)).toEqual([-2]);
    expect(Array.from((await ints('I8', [0x80, 7])).data)).toEqual([-128, 7]);
    expect(Array.from((await ints('U8', [200, 1])).data)).toEqual([200, 1]);
    expect(Array.from((await ints('BOOL', [1, 0])).data)).toEqual([1, 0]);
  });

  it('loads sharded checkpoints through their index', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'codiff-shards-'));
    writeFileSync(join(dir, 'model-00001-of-00002.safetensors'), writeSafetensors({ a: { shape: [1], data: new Float32Array([1]) } }));
    writeFileSync(join(dir, 'model-00002-of-00002.safetensors'), writeSafetensors({ b: { shape: [2], data: new Float32Array([2, 3]) } }));
    writeFileSync(
      join(dir, 'model.safetensors.index.json'),
      JSON.stringify({ metadata: {}, weight_map: { a: 'model-00001-of-00002.safetensors', b: 'model-00002-of-00002.safetensors' } }),
    );
    const all = await loadSafetensors(dir, 'model');
    expect([...all.keys()].sort()).toEqual(['a', 'b']);
    expect(Array.from(all.get('b')!.data)).toEqual([2, 3]);
    await expect(loadSafetensors(dir, 'missing')).rejects.toThrow(/missing\.safetensors: no such file/);
  });
});
