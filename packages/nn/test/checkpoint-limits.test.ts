import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { sharedWeights } from '../../../test-support/golden.js';
import { legacyCheckpoint, Pickle, sharedDictBomb, strideZeroCheckpoint } from '../../../test-support/torch-pickle.js';
import { NnError, readTorchCheckpoint, type CheckpointLimits } from '../src/index.js';
import { readSafetensorsFile } from '../src/node.js';

/** The error readTorchCheckpoint throws, checked to be an NnError, with how long the refusal took. */
function refusal(bytes: Uint8Array, limits?: CheckpointLimits): { error: NnError; ms: number } {
  const start = performance.now();
  try {
    readTorchCheckpoint(bytes, 'hostile.pth', limits);
  } catch (e) {
    expect(e).toBeInstanceOf(NnError);
    return { error: e as NnError, ms: performance.now() - start };
  }
  throw new Error('the checkpoint was accepted');
}

describe('readTorchCheckpoint resource limits', () => {
  it('refuses a ~1 KB shared-dict bomb (22 levels, 4 M tensors) quickly, naming the file and the limit', () => {
    const bytes = sharedDictBomb(22);
    expect(bytes.length).toBeLessThan(1500);
    const { error, ms } = refusal(bytes);
    expect(error.code).toBe('TOO_LARGE');
    expect(error.message).toMatch(/^hostile\.pth: more than 20000 tensors \(limit maxTensors\)/);
    expect(ms).toBeLessThan(2000);
  });

  it('refuses 16 levels (65,536 tensors) too; a caller who trusts the file can raise the limit', () => {
    expect(refusal(sharedDictBomb(16)).error.code).toBe('TOO_LARGE');
    const raised = readTorchCheckpoint(sharedDictBomb(16), 'trusted.pth', { maxTensors: 70_000 });
    expect(raised.size).toBe(65_536);
    expect(raised.get('a.b.a.b.a.b.a.b.a.b.a.b.a.b.a.b.w')!.data).toEqual(Float32Array.of(1));
  });

  it('bounds the expansion of shared dicts that hold no tensors', () => {
    const { error } = refusal(sharedDictBomb(22, 'int'));
    expect(error.message).toMatch(/more than 1000000 dict entries .*\(limit maxObjects\)/);
  });

  it('refuses a dict that contains itself instead of recursing forever', () => {
    const cyclic = new Pickle().emptyDict().put(0).mark().str('self').get(0).setItems();
    expect(refusal(legacyCheckpoint(cyclic, {})).error.message).toMatch(/contains itself/);
  });

  it('refuses a 20000×20000 stride-0 tensor over one stored element (a ~500-byte file), and eight of them', () => {
    const one = strideZeroCheckpoint(1, [20000, 20000]);
    expect(one.length).toBeLessThan(600);
    for (const bytes of [one, strideZeroCheckpoint(8, [20000, 20000])]) {
      const { error, ms } = refusal(bytes);
      expect(error.code).toBe('TOO_LARGE');
      expect(error.message).toMatch(/hostile\.pth: tensor 't0' is a stride-0 \(broadcast\) view of shape \[20000, 20000\]/);
      expect(ms).toBeLessThan(100);
    }
  });

  it('refuses overlapping views that would expand their storage', () => {
    const p = new Pickle().emptyDict().mark().str('w').tensor('0', 1999, [1000, 1000], [1, 1]).setItems();
    const { error } = refusal(legacyCheckpoint(p, { '0': new Float32Array(1999) }));
    expect(error.message).toMatch(/'w' is an overlapping view \(1000000 elements over 1999 storage elements\)/);
  });

  it('bounds the total bytes read, before allocating', () => {
    const p = new Pickle().emptyDict().mark().str('w').tensor('0', 1000, [10, 100], [100, 1]).setItems();
    const bytes = legacyCheckpoint(p, { '0': new Float32Array(1000) });
    expect(readTorchCheckpoint(bytes).get('w')!.shape).toEqual([10, 100]);
    expect(refusal(bytes, { maxBytes: 3999 }).error.message).toMatch(/4000 bytes as float32, over the limit of 3999 \(maxBytes\)/);
  });

  it('still reads tied weights (two keys over one storage) and legitimate strided views', () => {
    const p = new Pickle().emptyDict().mark();
    p.str('a').tensor('0', 6, [2, 3], [3, 1]).str('b').tensor('0', 6, [3, 2], [1, 3]).str('c').tensor('0', 6, [2], [3], 1).setItems();
    const got = readTorchCheckpoint(legacyCheckpoint(p, { '0': Float32Array.of(0, 1, 2, 3, 4, 5) }));
    expect(Array.from(got.get('a')!.data)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(Array.from(got.get('b')!.data)).toEqual([0, 3, 1, 4, 2, 5]);
    expect(Array.from(got.get('c')!.data)).toEqual([1, 4]);
  });

  it('names a compressed zip record (a zip bomb) as such, not as truncated', () => {
    const zip = new Uint8Array(readFileSync(new URL('./fixtures/torch/state_zip.pth', import.meta.url)));
    const view = new DataView(zip.buffer, zip.byteOffset, zip.byteLength);
    // Mark every central-directory record deflated with a 4 GB inflated size, as a zip bomb would.
    for (let p = 0; p + 46 <= zip.length; p++) {
      if (view.getUint32(p, true) !== 0x02014b50) continue;
      view.setUint16(p + 10, 8, true);
      view.setUint32(p + 24, 0xfffffff0, true);
    }
    const { error } = refusal(zip);
    expect(error.message).toMatch(/hostile\.pth: record .* is compressed \(method 8, \d+ bytes inflating to 4294967280\)/);
    expect(error.message).not.toMatch(/truncated/);
  });
});

describe('real legacy checkpoints', () => {
  it('reads LPIPS v0.1 vgg.pth (Python 2 era: SHORT_BINSTRING keys, OrderedDict from pairs, cuda:0 storages)', async () => {
    const got = readTorchCheckpoint(new Uint8Array(readFileSync(sharedWeights('lpips/vgg.pth'))), 'vgg.pth');
    const want = await readSafetensorsFile(sharedWeights('lpips/vgg.safetensors'));
    expect([...got.keys()].sort()).toEqual([...want.keys()].sort());
    for (const [key, t] of want) {
      expect(got.get(key)!.shape, key).toEqual(t.shape);
      expect(got.get(key)!.data, key).toEqual(t.data);
    }
  });
});
