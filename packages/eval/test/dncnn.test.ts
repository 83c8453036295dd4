import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import { useBackend, type BackendName, type HostTensor } from '@codiff/nn';
import { decodeImage } from '@codiff/image-io';
import { psnr } from '@codiff/metrics';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { golden, sharedPhotos, sharedWeights } from '../../../test-support/golden.js';
import { expectClose, goldenJson, nhwcTensor, readAll, tensorAt } from '../../../test-support/tfjs.js';
import { compress, type DnCNN } from '../src/index.js';
import { loadDnCNN } from '../src/node.js';

const CASES = Object.keys((goldenJson('dncnn3', 'manifest.json') as { cases: object }).cases);
const verification = JSON.parse(readFileSync(sharedWeights('dncnn3/verification.json'), 'utf8'));
const png = (path: string) => decodeImage(new Uint8Array(readFileSync(path)));

let cases: Map<string, HostTensor>;
beforeAll(async () => {
  cases = await readAll('dncnn3', 'cases.safetensors');
});

for (const backend of ['cpu', 'wasm'] as BackendName[]) {
  describe(`DnCNN-3 (real weights) on ${backend}`, () => {
    let net: DnCNN;
    beforeAll(async () => {
      await useBackend(backend);
      net = await loadDnCNN(sharedWeights('dncnn3/dncnn3.safetensors'));
    });
    afterAll(() => {
      for (const p of net.parameters()) p.dispose();
    });

    for (const name of CASES) {
      it(`${name}: y = x − net(x) equals the reference; 8-bit output equals its PNG`, async () => {
        const x = nhwcTensor(tensorAt(cases, `${name}.x`));
        const y = net.forward(x);
        await expectClose(y, tensorAt(cases, `${name}.y`), `${name}.y`);
        const manifest = goldenJson('dncnn3', 'manifest.json').cases[name];
        const restored = await net.restore(png(golden('dncnn3', manifest.x_png)));
        const want = png(golden('dncnn3', manifest.y_u8_png));
        const differing = Array.from(restored.data).filter((v, i) => v !== want.data[i]).length;
        expect(differing).toBeLessThanOrEqual(2); // values within 1e-4 of a rounding boundary may differ
        tf.dispose([x, y]);
      });
    }
  });
}

describe('DnCNN-3 on a whole Classic5 image (the published protocol)', () => {
  it('barbara at QF 10: JPEG and DnCNN-3 PSNR equal the verification values (wasm)', async () => {
    await useBackend('wasm');
    const net = await loadDnCNN(sharedWeights('dncnn3/dncnn3.safetensors'));
    const truth = png(sharedPhotos('test/Classic5/barbara.png'));
    const { decoded } = compress(truth, 10);
    const restored = await net.restore(decoded);
    const want = verification.measured.q10.per_image.barbara;
    expect(psnr(truth, decoded)).toBeCloseTo(want.jpeg, 3);
    expect(Math.abs(psnr(truth, restored) - want.dncnn3)).toBeLessThan(0.001);
    for (const p of net.parameters()) p.dispose();
  });
});

describe('DnCNN-3 restore', () => {
  it('frees every tensor it makes (grey and colour)', async () => {
    await useBackend('wasm');
    const net = await loadDnCNN(sharedWeights('dncnn3/dncnn3.safetensors'));
    const grey = { width: 24, height: 16, channels: 1 as const, data: new Uint8Array(384).map((_, i) => i % 251) };
    const colour = { width: 24, height: 16, channels: 3 as const, data: new Uint8Array(1152).map((_, i) => (i * 7) % 251) };
    await net.restore(grey);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) {
      await net.restore(grey);
      expect((await net.restore(colour)).channels).toBe(3);
    }
    expect(tf.memory().numTensors).toBe(before);
    for (const p of net.parameters()) p.dispose();
  });
});

describe('DnCNN-3 in tiles', () => {
  it('equals one whole-image pass (tiles carry the receptive margin)', async () => {
    await useBackend('wasm');
    const net = await loadDnCNN(sharedWeights('dncnn3/dncnn3.safetensors'));
    const [w, h] = [300, 170];
    const plane = Float32Array.from({ length: w * h }, (_, i) => ((i * 37) % 255) / 255);
    const tiled = await net.forwardTiled(plane, w, h);
    const x = tf.tensor4d(plane, [1, h, w, 1]);
    const whole = net.forward(x);
    const reference = (await whole.data()) as Float32Array;
    let worst = 0;
    for (let i = 0; i < reference.length; i++) worst = Math.max(worst, Math.abs(tiled[i] - reference[i]));
    expect(worst).toBeLessThan(1e-5);
    tf.dispose([x, whole]);
    for (const p of net.parameters()) p.dispose();
  });
});
