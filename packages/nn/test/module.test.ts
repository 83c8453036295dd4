import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  Conv2d,
  GroupNorm,
  Linear,
  Module,
  nchwToNhwc,
  nhwcToNchw,
  NnError,
  ParameterGroup,
  replicatePad,
  stopGradient,
  tfToTorch,
  torchToTf,
  useBackend,
  type HostTensor,
} from '../src/index.js';
import { openSafetensorsFile } from '../src/node.js';
import { golden, relMaxError } from '../../../test-support/golden.js';

class Block extends Module {
  readonly conv = this.child('conv', new Conv2d(2, 3, 3, { padding: 1 }));
  readonly proj = this.child('proj', new Linear(3, 4));
}

const ramp = (shape: number[], scale = 0.1): HostTensor => ({
  shape,
  data: Float32Array.from({ length: shape.reduce((a, d) => a * d, 1) }, (_, i) => Math.sin(i * 1.7) * scale),
});

/** Reference conv2d on host arrays: NCHW input, torch weight [out,in,kh,kw], stride 1, symmetric padding. */
function naiveConv(x: HostTensor, w: HostTensor, b: HostTensor, pad: number): HostTensor {
  const [n, ci, h, wd] = x.shape;
  const [co, , k] = w.shape;
  const oh = h + 2 * pad - k + 1, ow = wd + 2 * pad - k + 1;
  const out = new Float32Array(n * co * oh * ow);
  for (let b0 = 0; b0 < n; b0++) for (let o = 0; o < co; o++) for (let y = 0; y < oh; y++) for (let xx = 0; xx < ow; xx++) {
    let s = b.data[o];
    for (let i = 0; i < ci; i++) for (let ky = 0; ky < k; ky++) for (let kx = 0; kx < k; kx++) {
      const iy = y + ky - pad, ix = xx + kx - pad;
      if (iy < 0 || ix < 0 || iy >= h || ix >= wd) continue;
      s += x.data[((b0 * ci + i) * h + iy) * wd + ix] * w.data[((o * ci + i) * k + ky) * k + kx];
    }
    out[((b0 * co + o) * oh + y) * ow + xx] = s;
  }
  return { shape: [n, co, oh, ow], data: out };
}

for (const backend of ['cpu', 'wasm'] as const) {
  describe(`module system and layers on ${backend}`, () => {
    beforeAll(async () => {
      await useBackend(backend);
    });

    it('names parameters by dotted checkpoint paths and round-trips a state dict', async () => {
      const m = new Block();
      expect([...m.namedParameters()].map(([k]) => k)).toEqual(['conv.weight', 'conv.bias', 'proj.weight', 'proj.bias']);
      const dict = new Map([
        ['conv.weight', ramp([3, 2, 3, 3])],
        ['conv.bias', ramp([3])],
        ['proj.weight', ramp([4, 3])],
        ['proj.bias', ramp([4])],
      ]);
      const report = m.loadStateDict(dict);
      expect(report.loaded).toHaveLength(4);
      for (const [k, v] of (await m.stateDict())) expect(Array.from(v.data)).toEqual(Array.from(dict.get(k)!.data));
      m.dispose();
    });

    it('strict loading names missing, unexpected and mis-shaped keys', async () => {
      const m = new Block();
      const dict = new Map([
        ['conv.weight', ramp([3, 2, 5, 5])],
        ['proj.weight', ramp([4, 3])],
        ['proj.bias', ramp([4])],
        ['extra.weight', ramp([1])],
      ]);
      expect(() => m.loadStateDict(dict)).toThrow(NnError);
      expect(() => m.loadStateDict(dict)).toThrow(/missing keys: conv\.bias.*unexpected keys: extra\.weight.*conv\.weight \(model \[3,2,3,3\], checkpoint \[3,2,5,5\]\)/);
      const lenient = m.loadStateDict(dict, { strict: false });
      expect(lenient.loaded).toEqual(['proj.weight', 'proj.bias']);
      m.dispose();
    });

    it('Conv2d and Linear equal a naive reference; layouts convert in one place', async () => {
      const m = new Block();
      const w = ramp([3, 2, 3, 3]), b = ramp([3], 0.5);
      m.loadStateDict(new Map([['conv.weight', w], ['conv.bias', b], ['proj.weight', ramp([4, 3])], ['proj.bias', ramp([4])]]));
      const x = ramp([1, 2, 5, 4], 1);
      const xin = nchwToNhwc(x);
      const y = m.conv.forward(tf.tensor4d(xin.data, xin.shape as [number, number, number, number]));
      const got = nhwcToNchw({ shape: y.shape, data: y.dataSync() as Float32Array });
      expect(relMaxError(got.data, naiveConv(x, w, b, 1).data)).toBeLessThan(1e-6);
      y.dispose();
      // Linear: y = x Wᵀ + b in torch terms.
      const lin = m.proj.forward(tf.tensor2d([[1, 2, 3]]));
      const W = ramp([4, 3]).data, bias = ramp([4]).data;
      const expected = [0, 1, 2, 3].map((o) => bias[o] + W[o * 3] * 1 + W[o * 3 + 1] * 2 + W[o * 3 + 2] * 3);
      expect(relMaxError(lin.dataSync(), expected)).toBeLessThan(1e-6);
      lin.dispose();
      expect(Array.from(tfToTorch('conv2d', w.shape, torchToTf('conv2d', w)))).toEqual(Array.from(w.data));
      m.dispose();
    });

    it('GroupNorm equals the golden VAE mid-block group_norm (eps 1e-6)', async () => {
      const weights = await openSafetensorsFile(golden('vae-tiny', 'weights.safetensors'));
      const inter = await openSafetensorsFile(golden('vae-tiny', 'intermediates.safetensors'));
      const key = 'encoder.mid_block.attentions.0.group_norm';
      const norm = new (class extends Module {
        readonly gn = this.child('group_norm', new GroupNorm(8, 64, 1e-6));
      })();
      norm.loadStateDict(
        new Map([['group_norm.weight', await weights.read(`${key}.weight`)], ['group_norm.bias', await weights.read(`${key}.bias`)]]),
      );
      // diffusers normalises tokens as [B, C, H·W]: view that as NCHW with W = 1.
      const raw = await inter.read(`${key}::in.arg0`);
      const x = nchwToNhwc({ shape: [...raw.shape, 1], data: raw.data });
      const ref = await inter.read(`${key}::out`);
      const y = norm.gn.forward(tf.tensor4d(x.data, x.shape as [number, number, number, number]));
      expect(ref.shape).toEqual(raw.shape);
      expect(relMaxError(nhwcToNchw({ shape: y.shape, data: y.dataSync() as Float32Array }).data, ref.data)).toBeLessThan(1e-5);
      y.dispose();
      norm.dispose();
      await weights.close();
      await inter.close();
    });

    it('forward calls leave no tensors behind', async () => {
      const m = new Block();
      const x = tf.randomNormal([1, 6, 6, 2]) as tf.Tensor4D;
      const before = tf.memory().numTensors;
      for (let i = 0; i < 5; i++) tf.tidy(() => m.proj.forward(m.conv.forward(x))).dispose();
      expect(tf.memory().numTensors).toBe(before);
      x.dispose();
      m.dispose();
    });
  });
}

describe('backend selection', () => {
  it('names what is missing for an unavailable backend', async () => {
    await expect(useBackend('tensorflow')).rejects.toThrow(/backend 'tensorflow' is unavailable.*@tensorflow\/tfjs-node/);
    await expect(useBackend('nope' as 'cpu')).rejects.toThrow(/unknown backend 'nope'/);
  });
});

describe('parameter placement', () => {
  it('device and host parameters free everything they allocate', async () => {
    await useBackend('wasm');
    const { withParameterPlacement } = await import('../src/index.js');
    const before = tf.memory();
    for (const placement of ['device', 'host'] as const) {
      const m = withParameterPlacement(placement, () => new Block());
      await m.moveTo(placement === 'device' ? 'host' : 'device');
      await m.moveTo(placement);
      m.dispose();
    }
    expect(tf.memory().numTensors).toBe(before.numTensors);
    expect(tf.memory().numBytes).toBe(before.numBytes);
  });
});

describe('stopGradient', () => {
  it('passes the value and blocks the gradient: d/dx Σ x·detach(x) = x', async () => {
    await useBackend('cpu');
    const x = tf.tensor1d([1, -2, 3]);
    const g = tf.grad((v: tf.Tensor) => tf.sum(tf.mul(v, stopGradient(v))))(x);
    expect(Array.from(await g.data())).toEqual([1, -2, 3]);
    tf.dispose([x, g]);
  });

  for (const backend of ['cpu', 'wasm'] as const) {
    it(`${backend}: nothing computed from the detached value runs backward, and its handle shares x's memory`, async () => {
      await useBackend(backend);
      const x = tf.tensor1d([1, -2, 3]);
      let backward = 0;
      const counted = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
        const [v, save] = args as [tf.Tensor, tf.GradSaveFunc];
        save([v]);
        return { value: tf.square(v), gradFunc: (dy, [saved]) => (backward++, tf.mul(dy, tf.mul(saved, 2))) };
      });
      const before = tf.memory();
      const g = tf.grad((v: tf.Tensor) => tf.add(tf.sum(tf.mul(v, 3)), tf.sum(counted(stopGradient(v)) as tf.Tensor)))(x);
      expect(Array.from(await g.data())).toEqual([3, 3, 3]);
      expect(backward).toBe(0);
      g.dispose();
      expect(tf.memory().numTensors).toBe(before.numTensors);
      // Disposing the handle leaves x's data alive.
      tf.tidy(() => {
        stopGradient(x);
      });
      expect(Array.from(await x.data())).toEqual([1, -2, 3]);
      x.dispose();
      expect(tf.memory().numTensors).toBe(before.numTensors - 1);
    });
  }
});

describe('ParameterGroup', () => {
  it('names parameters owned by other modules; loading writes through; disposing leaves them to their owner', async () => {
    await useBackend('cpu');
    const block = new Block();
    const group = new ParameterGroup([['trained.proj', block.proj.weight], ['trained.conv_bias', block.conv.bias!]]);
    expect([...group.namedParameters()].map(([k]) => k)).toEqual(['trained.proj', 'trained.conv_bias']);
    group.loadStateDict(new Map([['trained.proj', { shape: [4, 3], data: new Float32Array(12).fill(0.5) }], ['trained.conv_bias', { shape: [3], data: Float32Array.of(1, 2, 3) }]]));
    expect(Array.from((await block.proj.weight.toHost()).data)).toEqual(new Array(12).fill(0.5));
    group.dispose();
    expect(Array.from((await block.conv.bias!.toHost()).data)).toEqual([1, 2, 3]);
    expect(() => new ParameterGroup([['a', block.proj.weight], ['a', block.proj.weight]])).toThrow(/'a' is registered twice/);
    block.dispose();
  });
});

describe('replicatePad', () => {
  it('repeats the border rows and columns (torch ReplicationPad2d); no padding returns the input', async () => {
    await useBackend('cpu');
    const x = tf.tensor4d([1, 2, 3, 4, 5, 6], [1, 2, 3, 1]);
    const y = replicatePad(x, { top: 1, bottom: 2, left: 2, right: 1 });
    expect(y.shape).toEqual([1, 5, 6, 1]);
    const rows = [
      [1, 1, 1, 2, 3, 3],
      [1, 1, 1, 2, 3, 3],
      [4, 4, 4, 5, 6, 6],
      [4, 4, 4, 5, 6, 6],
      [4, 4, 4, 5, 6, 6],
    ];
    expect(Array.from(await y.data())).toEqual(rows.flat());
    expect(replicatePad(x, {})).toBe(x);
    tf.dispose([x, y]);
  });
});
