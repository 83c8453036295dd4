import * as tf from '@tensorflow/tfjs-core';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { useBackend, writeSafetensors, type HostTensor } from '@codiff/nn';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backendsUnderTest, expectClose, golden, goldenJson, nhwcTensor, readAll, tensorAt } from '../../../test-support/tfjs.js';
import { CaVE, CaveError, OFFICIAL_CAVE, caveConfigOf, caveParameterCount } from '../src/index.js';
import { caveFromStateDict, loadCave, saveCave } from '../src/node.js';

const TINY = { channels: [4, 8, 12, 16], blocks: 2 } as const;
const BACKENDS = await backendsUnderTest();

let weights: Map<string, HostTensor>;
let cases: Map<string, HostTensor>;
beforeAll(async () => {
  weights = await readAll('cave', 'weights.safetensors');
  cases = await readAll('cave', 'cases.safetensors');
});

for (const backend of BACKENDS) {
  describe(`CaVE (official tiny config) on ${backend}`, () => {
    let cave: CaVE;
    beforeAll(async () => {
      await useBackend(backend);
      cave = caveFromStateDict(weights);
    });
    afterAll(() => cave.dispose());

    it('caseA: reconstruction, QF and tokens equal the official forward (eval mode)', async () => {
      const x = nhwcTensor(tensorAt(cases, 'caseA.x'));
      const before = tf.memory().numTensors;
      const out = cave.forward(x);
      expect(tf.memory().numTensors - before).toBe(3);
      await expectClose(out.reconstruction, tensorAt(cases, 'caseA.recon'), 'recon');
      await expectClose(out.qf, tensorAt(cases, 'caseA.qf'), 'qf');
      await expectClose(out.tokens, tensorAt(cases, 'caseA.tokens'), 'tokens');
      const embedded = cave.embed(x);
      await expectClose(embedded, tensorAt(cases, 'caseA.tokens'), 'embed');
      const qf = cave.predictQuality(x);
      await expectClose(qf, tensorAt(cases, 'caseA.qf'), 'predictQuality');
      tf.dispose([x, out.reconstruction, out.qf, out.tokens, embedded, qf]);
    });

    it('caseB (70×100): tokens and QF at any size; the forward refuses as the official code fails', async () => {
      const x = nhwcTensor(tensorAt(cases, 'caseB.x'));
      const tokens = cave.embed(x);
      expect(tokens.shape).toEqual([1, 6, 16]);
      await expectClose(tokens, tensorAt(cases, 'caseB.tokens'), 'tokens');
      const qf = cave.predictQuality(x);
      await expectClose(qf, tensorAt(cases, 'caseB.qf'), 'qf');
      expect(await cave.estimateQuality(x)).toBeCloseTo(100 * (1 - tensorAt(cases, 'caseB.qf').data[0]), 3);
      const before = tf.memory().numTensors;
      expect(() => cave.forward(x)).toThrow(/multiple of 32 in both axes \(got 70×100, padded 72×104\)/);
      expect(tf.memory().numTensors).toBe(before);
      tf.dispose([x, tokens, qf]);
    });
  });
}

describe('CaVE intermediates and structure', () => {
  beforeAll(() => useBackend('cpu'));

  it('the upsamplers (ConvTranspose2d k = s) and the QFAttention blocks equal the official modules', async () => {
    const inter = await readAll('cave', 'intermediates.safetensors');
    const cave = caveFromStateDict(weights);
    for (const name of ['m_up3', 'm_up2', 'm_up1']) {
      const input = nhwcTensor(tensorAt(inter, `${name}.0::in.arg0`));
      const convT = cave[name as 'm_up3'].layers[0].forward(input);
      await expectClose(convT, tensorAt(inter, `${name}.0::out`), `${name}.0`);
      const block = cave[name as 'm_up3'].layers[1].forward(convT);
      await expectClose(block, tensorAt(inter, `${name}.1::out`), `${name}.1 (QFAttention)`);
      tf.dispose([input, convT, block]);
    }
    cave.dispose();
  });

  it('the official configuration has exactly the official keys and shapes (346 entries, 74,887,428 parameters)', () => {
    const full = goldenJson('cave', 'full_config_keys.json') as { keys: { key: string; shape: number[]; kind: string }[]; total_parameters: number };
    const cave = new CaVE(OFFICIAL_CAVE);
    const ours = [...cave.namedParameters()].map(([k, p]): [string, number[]] => [k, [...p.torchShape]]);
    expect(new Map(ours)).toEqual(new Map(full.keys.map((e) => [e.key, e.shape])));
    expect(caveParameterCount(cave)).toBe(full.total_parameters);
    const buffers = [...cave.namedParameters()].filter(([, p]) => !p.trainable).map(([k]) => k);
    expect(buffers.sort()).toEqual(full.keys.filter((e) => e.kind === 'buffer').map((e) => e.key).sort());
    expect(caveConfigOf(new Map(full.keys.map((e) => [e.key, e])))).toEqual({ ...OFFICIAL_CAVE, inChannels: 3, outChannels: 3 });
    cave.dispose();
  });

  it('reads the official legacy G.pth equal to its safetensors copy, config inferred', async () => {
    const cave = await loadCave(golden('cave', 'G.pth'));
    expect(cave.config).toEqual({ ...TINY, inChannels: 3, outChannels: 3 });
    expect(cave.training).toBe(false);
    const dict = await cave.stateDict();
    expect(dict.size).toBe(184);
    for (const [k, t] of weights) expect(dict.get(k)?.data, k).toEqual(t.data);
    cave.dispose();
  });

  it('a checkpoint of another configuration names the mismatching keys', async () => {
    expect(() => caveFromStateDict(weights, { channels: [4, 8, 12, 20], blocks: 2 })).toThrow(/shape mismatches: m_down3\.2\.weight \(model \[20,12,4,4\], checkpoint \[16,12,4,4\]\)/);
    expect(() => caveFromStateDict(weights, { channels: [4, 8, 12, 16], blocks: 3 })).toThrow(/missing keys: m_down1\.2\.res\.0\.weight/);
    const partial = new Map([...weights].filter(([k]) => !k.startsWith('m_tail')));
    expect(() => caveFromStateDict(partial)).toThrow(/not a CaVE state dict: no m_tail\.weight/);
  });

  it('a truncated or mistyped checkpoint is refused, naming the byte offset or the key', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cave-bad-'));
    const gpth = readFileSync(golden('cave', 'G.pth'));
    writeFileSync(join(dir, 'cut.pth'), gpth.subarray(0, 100_000));
    await expect(loadCave(join(dir, 'cut.pth'))).rejects.toThrow(/cut\.pth: truncated: storage \d+ needs bytes \d+\.\.\d+, the file ends at byte 100000/);
    const st = readFileSync(golden('cave', 'weights.safetensors'));
    writeFileSync(join(dir, 'cut.safetensors'), st.subarray(0, 150_000));
    await expect(loadCave(join(dir, 'cut.safetensors'))).rejects.toThrow(/cut\.safetensors: tensor '[\w.]+': data_offsets \[\d+, \d+\] outside the \d+-byte data section/);
    // The same weights with m_tail.weight stored as bytes (U8): shapes fit, the dtype does not.
    const tensors = Object.fromEntries([...weights].map(([k, t]) => [k, { ...t, dtype: 'F32' as const }]));
    const file = writeSafetensors(tensors);
    const header = JSON.parse(Buffer.from(file.subarray(8, 8 + Number(Buffer.from(file).readBigUInt64LE(0)))).toString());
    const [b, e] = header['m_tail.weight'].data_offsets;
    header['m_tail.weight'] = { dtype: 'U8', shape: header['m_tail.weight'].shape, data_offsets: [b, b + (e - b) / 4] };
    const json = Buffer.from(JSON.stringify(header));
    const body = file.subarray(8 + Number(Buffer.from(file).readBigUInt64LE(0)));
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(json.length));
    writeFileSync(join(dir, 'u8.safetensors'), Buffer.concat([len, json, body]));
    await expect(loadCave(join(dir, 'u8.safetensors'))).rejects.toThrow(/not floating point: m_tail\.weight \(U8\)/);
  });

  it('estimateQuality averages the QF head over tiles of the training patch on the 8×8 grid, the last ones overlapping', async () => {
    const x = tf.randomUniform([1, 80, 104, 3], 0, 1, 'float32', 5) as tf.Tensor4D;
    const meanOver = async (model: CaVE, tops: number[], lefts: number[], th: number, tw: number) => {
      const tiles = tops.flatMap((t) => lefts.map((l) => tf.slice(x, [0, t, l, 0], [1, th, tw, 3])));
      const q = model.predictQuality(tf.concat(tiles, 0));
      const mean = Array.from(await q.data()).reduce((a, b) => a + b, 0) / tiles.length;
      tf.dispose([...tiles, q]);
      return 100 * (1 - mean);
    };
    const tiled = caveFromStateDict(weights, { ...TINY, qualityPatch: 32 });
    // Rows 0, 32 and 48 (80 − 32 on the grid); columns 0, 32, 64 and 72.
    expect(await tiled.estimateQuality(x)).toBeCloseTo(await meanOver(tiled, [0, 32, 48], [0, 32, 64, 72], 32, 32), 4);
    const wide = caveFromStateDict(weights, { ...TINY, qualityPatch: 96 });
    // Taller than the image: one row of 80-high tiles, at columns 0 and 8.
    expect(await wide.estimateQuality(x)).toBeCloseTo(await meanOver(wide, [0], [0, 8], 80, 96), 4);
    const whole = caveFromStateDict(weights);
    expect(await whole.estimateQuality(x)).toBeCloseTo(await meanOver(whole, [0], [0], 80, 104), 4);
    expect(Math.abs((await tiled.estimateQuality(x)) - (await whole.estimateQuality(x)))).toBeGreaterThan(1e-3);
    const before = tf.memory().numTensors;
    await tiled.estimateQuality(x);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose(x);
    [tiled, wide, whole].forEach((m) => m.dispose());
  });

  it('the training patch travels in the saved checkpoint; a loader option overrides it; a bad one is refused', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cave-patch-'));
    const trained = caveFromStateDict(weights, { ...TINY, qualityPatch: 64 });
    await saveCave(trained, join(dir, 'cave.safetensors'));
    trained.dispose();
    const loaded = await loadCave(join(dir, 'cave.safetensors'));
    expect(loaded.config.qualityPatch).toBe(64);
    loaded.dispose();
    const overridden = await loadCave(join(dir, 'cave.safetensors'), { qualityPatch: 128 });
    expect(overridden.config.qualityPatch).toBe(128);
    overridden.dispose();
    const official = await loadCave(golden('cave', 'G.pth'));
    expect(official.config.qualityPatch).toBeUndefined();
    official.dispose();
    await expect(loadCave(join(dir, 'cave.safetensors'), { qualityPatch: 60 })).rejects.toThrow(/qualityPatch must be a multiple of 8 of at least 32 \(got 60\)/);
  });

  it('bad inputs and configurations are CaveErrors with the reason', () => {
    const cave = new CaVE(TINY);
    const gray = tf.zeros([1, 64, 64, 1]) as tf.Tensor4D;
    expect(() => cave.embed(gray)).toThrow(CaveError);
    expect(() => cave.embed(gray)).toThrow(/three equal channels/);
    const small = tf.zeros([1, 24, 64, 3]) as tf.Tensor4D;
    expect(() => cave.embed(small)).toThrow(/too small to embed \(24×64/);
    expect(() => new CaVE({ channels: [4, 8, 12], blocks: 2 } as never)).toThrow(/four positive integer widths/);
    tf.dispose([gray, small]);
    cave.dispose();
  });
});
