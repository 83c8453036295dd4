import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { legacyCheckpoint, Pickle } from '../../../test-support/torch-pickle.js';
import { NnError, readTorchCheckpoint, readTorchCheckpointContents } from '../src/index.js';

const fixture = (name: string) => new Uint8Array(readFileSync(new URL(`./fixtures/torch/${name}`, import.meta.url)));
// Written by torch 1.13 with scripts/make_torch_fixtures.py, which also recorded the values.
const expected = JSON.parse(readFileSync(new URL('./fixtures/torch/expected.json', import.meta.url), 'utf8')) as Record<
  'state' | 'nested',
  Record<string, { shape: number[]; data: number[] }>
>;

function expectTensors(got: ReadonlyMap<string, { shape: readonly number[]; data: Float32Array }>, want: (typeof expected)['state']) {
  expect([...got.keys()].sort()).toEqual(Object.keys(want).sort());
  for (const [key, { shape, data }] of Object.entries(want)) {
    const t = got.get(key)!;
    expect(t.shape, key).toEqual(shape);
    expect(Array.from(t.data), key).toEqual(Array.from(Float32Array.from(data)));
  }
}

describe('readTorchCheckpoint', () => {
  it('reads the zip format: f32/f16/bf16/f64/int64, parameters, non-contiguous and offset views, empty tensors', () => {
    expectTensors(readTorchCheckpoint(fixture('state_zip.pth')), expected.state);
  });

  it('reads the legacy (torch < 1.6) stream format to the same tensors', () => {
    expectTensors(readTorchCheckpoint(fixture('state_legacy.pth')), expected.state);
  });

  it('unwraps a training checkpoint’s state_dict and reads plain dicts (DISTS weights.pt)', () => {
    expectTensors(readTorchCheckpoint(fixture('wrapped.pth')), expected.state);
    expectTensors(readTorchCheckpoint(fixture('dists_like.pt')), expected.nested);
  });

  it('keeps the plain values beside the tensors (ranks, module-name lists), other objects left out', () => {
    const p = new Pickle().emptyDict().mark();
    p.str('rank').int(4);
    p.str('modules').mark().str('conv_in').str('down_blocks.0.attentions.0.proj_in').tuple();
    p.str('flags').mark().bool(true).none().tuple();
    p.str('w').tensor('0', 2, [2], [1]);
    p.setItems();
    const { tensors, values } = readTorchCheckpointContents(legacyCheckpoint(p, { '0': Float32Array.of(1, 2) }));
    expect([...tensors.keys()]).toEqual(['w']);
    expect(Object.fromEntries(values)).toEqual({ rank: 4, modules: ['conv_in', 'down_blocks.0.attentions.0.proj_in'], flags: [true, null] });
  });

  it('refuses a pickle that would run code, naming what it asked for', () => {
    expect(() => readTorchCheckpoint(fixture('malicious.pkl'), 'evil.pth')).toThrow(
      /evil\.pth: the checkpoint refers to posix\.system.*refusing to run pickle code/,
    );
  });

  it('reports corrupt and foreign files as NnError', () => {
    const zip = fixture('state_zip.pth');
    const cases: [Uint8Array, RegExp][] = [
      [new TextEncoder().encode('hello'), /not a PyTorch checkpoint/],
      [zip.subarray(0, zip.length - 30), /x\.pth: .*(zip|truncated|corrupt)/],
      [fixture('state_legacy.pth').subarray(0, 900), /x\.pth: .*truncated/],
    ];
    for (const [bytes, message] of cases) {
      let error: unknown;
      try {
        readTorchCheckpoint(bytes, 'x.pth');
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(NnError);
      expect((error as Error).message).toMatch(message);
    }
  });

  it('never crashes on mutated files: only tensors or an NnError', () => {
    let seed = 12345;
    const random = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
    for (const name of ['state_zip.pth', 'state_legacy.pth']) {
      const original = fixture(name);
      for (let i = 0; i < 500; i++) {
        const bytes = original.slice();
        for (let k = 0; k < 1 + Math.floor(random() * 4); k++) bytes[Math.floor(random() * bytes.length)] = Math.floor(random() * 256);
        try {
          readTorchCheckpoint(bytes, name);
        } catch (e) {
          expect(e, String(e)).toBeInstanceOf(NnError);
        }
      }
    }
  });
});
