import * as tf from '@tensorflow/tfjs-core';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bytesFolder, nhwcToNchw, useBackend, type HostTensor } from '@codiff/nn';
import { AutoencoderKL, SD21_UNET_CONFIG, SD21_VAE_CONFIG, UNet2DConditionModel } from '@codiff/sd-unet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tinyParts as codiffTinyParts, readTinyWeights } from '../../../test-support/codiff-tiny.js';
import { backendsUnderTest, expectClose, golden, goldenJson, nhwcTensor, readAll, relMaxError, tensorAt } from '../../../test-support/tfjs.js';
import { CodiffGenerator, loadModelFolder, officialAdapterModules, PipelineError, restoreImage, UNET_ADAPTERS, type CodiffCheckpoint, type Pixels, type RestoreStage } from '../src/index.js';
import { loadCodiff, readCodiffCheckpoint, saveCodiffCheckpoint } from '../src/node.js';

const BACKENDS = await backendsUnderTest();

let weights: Awaited<ReturnType<typeof readTinyWeights>>;
let cases: Map<string, HostTensor>;
let checkpoint: CodiffCheckpoint;
beforeAll(async () => {
  weights = await readTinyWeights();
  cases = await readAll('codiff-tiny', 'cases.safetensors');
  checkpoint = await readCodiffCheckpoint(golden('codiff-tiny', 'model.pkl'));
});

/** The tiny SD UNet and VAE (golden/unet-tiny, vae-tiny) and CaVE (golden/codiff-tiny) under the official pkl. */
const tinyParts = () => codiffTinyParts(weights);

/** The golden README's bound for the decoded image (the decoder amplifies): 2e-4·max|ref|. */
async function expectImageClose(actual: tf.Tensor, ref: HostTensor, what: string): Promise<void> {
  const got = nhwcToNchw({ shape: actual.shape, data: (await actual.data()) as Float32Array }).data;
  expect(relMaxError(got, ref.data), `${what}: max|Δ|/max|ref|`).toBeLessThanOrEqual(2e-4);
}

describe('official checkpoint (codiff-tiny/model.pkl)', () => {
  it('reads the adapter lists and ranks, and the official placement rule recomputes the same lists', async () => {
    expect(checkpoint.rankUnet).toBe(4);
    expect(checkpoint.rankVae).toBe(4);
    expect(checkpoint.loraAlpha).toBe(8);
    // 47 stored VAE entries are 23 modules (the official loop appends some names twice).
    expect(checkpoint.modules.vaeEncoder).toHaveLength(23);
    expect([checkpoint.modules.unetEncoder.length, checkpoint.modules.unetDecoder.length, checkpoint.modules.unetOthers.length]).toEqual([93, 148, 16]);
    await useBackend('cpu');
    const { unet, vae, cave } = tinyParts();
    const computed = officialAdapterModules(unet, vae);
    for (const key of ['unetEncoder', 'unetDecoder', 'unetOthers', 'vaeEncoder'] as const) {
      expect(new Set(computed[key]), key).toEqual(new Set(checkpoint.modules[key]));
    }
    [unet, vae, cave].forEach((m) => m.dispose());
  });

  it('for the real SD 2.1-base structure the rule gives the official lists (lora_modules.json)', async () => {
    await useBackend('cpu');
    // Module names depend on the structure, not the widths: SD 2.1-base's blocks at a tenth of the channels.
    const unet = new UNet2DConditionModel({ ...SD21_UNET_CONFIG, blockOutChannels: [32, 64, 128, 128], heads: [1, 1, 1, 1], crossAttentionDim: 16 });
    const vae = new AutoencoderKL({ ...SD21_VAE_CONFIG, blockOutChannels: [32, 64, 128, 128] });
    const real = goldenJson('codiff-tiny', 'lora_modules.json') as Record<string, string[]>;
    const computed = officialAdapterModules(unet, vae);
    expect(new Set(computed.unetEncoder)).toEqual(new Set(real.unet_lora_encoder_modules));
    expect(new Set(computed.unetDecoder)).toEqual(new Set(real.unet_lora_decoder_modules));
    expect(new Set(computed.unetOthers)).toEqual(new Set(real.unet_lora_others_modules));
    expect(new Set(computed.vaeEncoder)).toEqual(new Set(real.vae_lora_encoder_modules));
    expect(computed.unetEncoder.length + computed.unetDecoder.length + computed.unetOthers.length).toBe(258);
    unet.dispose();
    vae.dispose();
  });

  it('a converted safetensors checkpoint reads back equal (tensors, lists, ranks, alpha)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'codiff-ckpt-'));
    await saveCodiffCheckpoint(checkpoint, join(dir, 'codiff.safetensors'));
    const back = await readCodiffCheckpoint(join(dir, 'codiff.safetensors'));
    expect(back.modules).toEqual(checkpoint.modules);
    expect([back.rankUnet, back.rankVae, back.loraAlpha]).toEqual([4, 4, 8]);
    expect([...back.tensors.keys()].sort()).toEqual([...checkpoint.tensors.keys()].sort());
    for (const [k, t] of checkpoint.tensors) expect(back.tensors.get(k)!.data, k).toEqual(t.data);
  });

  it('a generator gives back the checkpoint it was loaded from (toCheckpoint)', async () => {
    await useBackend('cpu');
    const g = CodiffGenerator.fromCheckpoint(tinyParts(), checkpoint);
    const back = await g.toCheckpoint();
    expect(back.modules).toEqual(checkpoint.modules);
    expect([...back.tensors.keys()].sort()).toEqual([...checkpoint.tensors.keys()].sort());
    for (const [k, t] of checkpoint.tensors) expect(back.tensors.get(k)!.data, k).toEqual(t.data);
    await g.mergeAdapters();
    await expect(g.toCheckpoint()).rejects.toThrow(/merged/);
    g.dispose();
  });

  it('a checkpoint that does not fit is refused naming the tensor, and nothing is loaded', async () => {
    await useBackend('cpu');
    const parts = tinyParts();
    const g = new CodiffGenerator(parts, { modules: checkpoint.modules, rankUnet: 4, rankVae: 4 });
    const before = await g.proj.weight.toHost();
    const missing = new Map(checkpoint.tensors);
    missing.delete('state_dict_vae.quant_conv.lora_B.default_encoder.weight');
    expect(() => g.loadCheckpoint({ ...checkpoint, tensors: missing })).toThrow(/state_dict_vae: .*missing keys: quant_conv\.lora_B\.default_encoder\.weight/);
    expect((await g.proj.weight.toHost()).data).toEqual(before.data);
    const other = new CodiffGenerator(tinyParts(), { modules: checkpoint.modules, rankUnet: 8, rankVae: 4 });
    expect(() => other.loadCheckpoint(checkpoint)).toThrow(PipelineError);
    expect(() => other.loadCheckpoint(checkpoint)).toThrow(/shape mismatches: conv_in\.lora_A\.default_encoder\.weight \(model \[8,4,3,3\], checkpoint \[4,4,3,3\]\)/);
    g.dispose();
    other.dispose();
  });

  it('a state dict that is not a CODiff checkpoint is refused with one line', async () => {
    await expect(readCodiffCheckpoint(golden('codiff-tiny', 'cave.pth'))).rejects.toThrow(/'unet_lora_encoder_modules' is missing \(not a CODiff model\.pkl\?\)/);
    await expect(readCodiffCheckpoint(golden('codiff-tiny', 'cave.safetensors'))).rejects.toThrow(/no 'codiff_checkpoint' metadata/);
  });

  it('loadCodiff reads a diffusers folder, model.pkl and cave.pth from disk', async () => {
    await useBackend('cpu');
    const sd = mkdtempSync(join(tmpdir(), 'codiff-sd-'));
    for (const [folder, name] of [['unet', 'unet-tiny'], ['vae', 'vae-tiny']]) {
      mkdirSync(join(sd, folder));
      copyFileSync(golden(name, 'config.json'), join(sd, folder, 'config.json'));
      copyFileSync(golden(name, 'weights.safetensors'), join(sd, folder, 'diffusion_pytorch_model.safetensors'));
    }
    const g = await loadCodiff({ sd, checkpoint: golden('codiff-tiny', 'model.pkl'), cave: golden('codiff-tiny', 'cave.pth') });
    const lq = nhwcTensor(tensorAt(cases, 'caseA.lq'));
    const out = g.forward(lq);
    await expectClose(out.eps, tensorAt(cases, 'caseA.mean.eps'), 'eps');
    tf.dispose([lq, ...Object.values(out)]);
    g.dispose();
    await expect(loadCodiff({ sd, checkpoint: golden('codiff-tiny', 'model.pkl'), cave: join(sd, 'nope.pth') })).rejects.toThrow(/nope\.pth: no such file/);
  });

  it('loadModelFolder reads the same SD-based folder through any reader (a browser’s picked folder), official files included', async () => {
    await useBackend('cpu');
    const files = new Map<string, Uint8Array>([
      ['unet/config.json', readFileSync(golden('unet-tiny', 'config.json'))],
      ['unet/diffusion_pytorch_model.safetensors', readFileSync(golden('unet-tiny', 'weights.safetensors'))],
      ['vae/config.json', readFileSync(golden('vae-tiny', 'config.json'))],
      ['vae/diffusion_pytorch_model.safetensors', readFileSync(golden('vae-tiny', 'weights.safetensors'))],
      ['model.pkl', readFileSync(golden('codiff-tiny', 'model.pkl'))],
      ['cave.pth', readFileSync(golden('codiff-tiny', 'cave.pth'))],
    ]);
    const before = tf.memory().numTensors;
    // host: 'sd' keeps SD's UNet in host memory (what wasm needs for SD 2.1) and gives the same output.
    const g = await loadModelFolder(bytesFolder('picked', async (path) => files.get(path)), { host: 'sd' });
    expect(new Set(g.unet.parameters().map((p) => p.placement))).toEqual(new Set(['host']));
    const lq = nhwcTensor(tensorAt(cases, 'caseA.lq'));
    const out = g.forward(lq);
    await expectClose(out.eps, tensorAt(cases, 'caseA.mean.eps'), 'eps');
    tf.dispose([lq, ...Object.values(out)]);
    g.dispose();
    expect(tf.memory().numTensors).toBe(before);
    // A VAE whose weights are missing fails after CaVE and the UNet loaded: named, and they are freed.
    files.delete('vae/diffusion_pytorch_model.safetensors');
    await expect(loadModelFolder(bytesFolder('picked', async (path) => files.get(path)))).rejects.toThrow('picked/vae/diffusion_pytorch_model.safetensors: no such file');
    expect(tf.memory().numTensors).toBe(before);
  });
});

for (const backend of BACKENDS) {
  // WebGPU (SwiftShader) is slow: one case there, every case on cpu and wasm.
  const caseNames = backend === 'webgpu' ? ['caseA'] : ['caseA', 'caseB'];
  describe(`CODiff generator (codiff-tiny) on ${backend}`, () => {
    let g: CodiffGenerator;
    beforeAll(async () => {
      await useBackend(backend);
      g = CodiffGenerator.fromCheckpoint(tinyParts(), checkpoint);
    });
    afterAll(() => g.dispose());

    for (const name of caseNames) {
      for (const path of ['mean', 'sample'] as const) {
        it(`${name}, ${path} latent: tokens, context, z, ε, x̂0 and the image equal the official generator`, async () => {
          const lq = nhwcTensor(tensorAt(cases, `${name}.lq`));
          const noise = path === 'sample' ? nhwcTensor(tensorAt(cases, `${name}.sample.noise`)) : undefined;
          const before = tf.memory().numTensors;
          const out = g.forward(lq, { noise });
          expect(tf.memory().numTensors - before).toBe(7);
          await expectClose(out.tokens, tensorAt(cases, `${name}.tokens`), 'tokens');
          await expectClose(out.context, tensorAt(cases, `${name}.ehs`), 'context');
          await expectClose(out.z, tensorAt(cases, `${name}.${path}.z`), 'z');
          await expectClose(out.eps, tensorAt(cases, `${name}.${path}.eps`), 'eps');
          await expectClose(out.x0, tensorAt(cases, `${name}.${path}.x0`), 'x0');
          await expectImageClose(out.decoded, tensorAt(cases, `${name}.${path}.dec_raw`), 'decoded');
          await expectImageClose(out.image, tensorAt(cases, `${name}.${path}.img`), 'image');
          tf.dispose([lq, ...(noise ? [noise] : []), ...Object.values(out)]);
        });
      }
    }

    if (backend !== 'webgpu') {
      it('with only default_others active, ε equals the state right after the official __init__', async () => {
        const lq = nhwcTensor(tensorAt(cases, 'caseA.lq'));
        g.unetLora.setActive(['default_others']);
        const eps = tf.tidy(() => g.forward(lq).eps);
        g.unetLora.setActive([...UNET_ADAPTERS]);
        await expectClose(eps, tensorAt(cases, 'caseA.mean.eps_only_default_others'), 'eps (default_others only)');
        tf.dispose([lq, eps]);
      });

      it('merged adapters give the same restoration as the adapter branches', async () => {
        const parts = tinyParts();
        const merged = CodiffGenerator.fromCheckpoint(parts, checkpoint);
        await merged.mergeAdapters();
        const lq = nhwcTensor(tensorAt(cases, 'caseB.lq'));
        const out = merged.forward(lq);
        await expectClose(out.eps, tensorAt(cases, 'caseB.mean.eps'), 'eps (merged)');
        await expectImageClose(out.image, tensorAt(cases, 'caseB.mean.img'), 'image (merged)');
        tf.dispose([lq, ...Object.values(out)]);
        merged.dispose();
      });
    }

    it('refuses sizes that are not multiples of 8 before running anything', () => {
      const x = tf.zeros([1, 60, 64, 3]) as tf.Tensor4D;
      const before = tf.memory().numTensors;
      expect(() => g.forward(x)).toThrow(/multiples of 8 \(got 60×64×3\); pad them first/);
      expect(tf.memory().numTensors).toBe(before);
      x.dispose();
    });
  });
}

/** A golden NCHW image in [0, 1] (exactly u8/255) as 8-bit interleaved pixels. */
function pixelsOf(t: HostTensor): Pixels {
  const [, , h, w] = t.shape;
  const hwc = nhwcTensorData(t);
  return { width: w, height: h, channels: 3, data: Uint8Array.from(hwc, (v) => Math.round(v * 255)) };
}

const nhwcTensorData = (t: HostTensor) => {
  const x = nhwcTensor(t);
  const data = x.dataSync() as Float32Array;
  x.dispose();
  return data;
};

describe('restoreImage (codiff-tiny on wasm)', () => {
  let g: CodiffGenerator;
  beforeAll(async () => {
    await useBackend('wasm');
    g = CodiffGenerator.fromCheckpoint(tinyParts(), checkpoint);
  });
  afterAll(() => g.dispose());

  it('a 64² JPEG restores to the official generator output in 8 bits (no colour fix)', async () => {
    const out = await restoreImage(g, pixelsOf(tensorAt(cases, 'caseA.lq')), { color: 'none' });
    const ref = nhwcTensorData(tensorAt(cases, 'caseA.mean.img')).map((v) => Math.trunc(Math.fround(Math.fround(v * 0.5 + 0.5) * 255)));
    let off = 0;
    out.data.forEach((v, i) => {
      expect(Math.abs(v - ref[i])).toBeLessThanOrEqual(1);
      off += v === ref[i] ? 0 : 1;
    });
    // The image matches to 2e-4; only values within that of an integer step can truncate differently.
    expect(off / out.data.length).toBeLessThan(0.01);
  });

  it('any size and grey: padded to 8 and cropped back; a grey image comes back grey; memory returns to where it was', async () => {
    const rgb = pixelsOf(tensorAt(cases, 'caseB.lq'));
    const crop = (p: Pixels, w: number, h: number): Pixels => {
      const data = new Uint8Array(w * h * 3);
      for (let y = 0; y < h; y++) data.set(p.data.subarray(y * p.width * 3, (y * p.width + w) * 3), y * w * 3);
      return { width: w, height: h, channels: 3, data };
    };
    const before = tf.memory().numTensors;
    const odd = await restoreImage(g, crop(rgb, 90, 61));
    expect([odd.width, odd.height, odd.channels, odd.data.length]).toEqual([90, 61, 3, 90 * 61 * 3]);
    const c = crop(rgb, 90, 61);
    const grey: Pixels = { width: 90, height: 61, channels: 1, data: Uint8Array.from({ length: 90 * 61 }, (_, i) => c.data[3 * i + 1]) };
    const out = await restoreImage(g, grey, { color: 'wavelet' });
    expect([out.channels, out.data.length]).toEqual([1, 90 * 61]);
    expect(tf.memory().numTensors).toBe(before);
    await expect(restoreImage(g, { width: 20, height: 90, channels: 3, data: new Uint8Array(20 * 90 * 3) })).rejects.toThrow(/20×90 is too small/);
  });

  it('large images run over latent tiles (progress per tile); aborting frees every tensor', async () => {
    const big: Pixels = { width: 200, height: 136, channels: 3, data: Uint8Array.from({ length: 200 * 136 * 3 }, (_, i) => (i * 37) % 251) };
    const seen: [RestoreStage, number, number][] = [];
    const before = tf.memory().numTensors;
    await restoreImage(g, big, { tile: 16, overlap: 8, onProgress: (s, d, t) => seen.push([s, d, t]) });
    // Latent 17×25 with 16/8: x origins 0, 8, 9 and y origins 0, 1 → 6 UNet calls.
    expect(seen.filter(([s]) => s === 'unet')).toEqual(Array.from({ length: 6 }, (_, i) => ['unet', i + 1, 6]));
    expect(seen[0][0]).toBe('encode');
    expect(seen.at(-1)![0]).toBe('decode');
    // The tiled VAE on both sides (tiles far below the official 1024/224 so that this image needs them).
    const stages = new Set<string>();
    const tiledVae = await restoreImage(g, big, { vaeEncoderTile: 64, vaeDecoderTile: 1, onProgress: (s, d, t) => stages.add(`${s} ${t}`) });
    expect([tiledVae.width, tiledVae.height]).toEqual([200, 136]);
    expect([...stages].filter((s) => /^(encode|decode) (\d+)$/.test(s) && Number(s.split(' ')[1]) > 1).length).toBe(2);
    const controller = new AbortController();
    const run = restoreImage(g, big, { tile: 16, overlap: 8, signal: controller.signal, onProgress: (s, d) => s === 'unet' && d === 2 && controller.abort(new Error('stop')) });
    await expect(run).rejects.toThrow('stop');
    expect(tf.memory().numTensors).toBe(before);
    // Aborts inside the tiled VAE land after the pass they were sent in, on either side.
    for (const stage of ['encode', 'decode'] as const) {
      const inVae = new AbortController();
      const passes: number[] = [];
      const run = restoreImage(g, big, { vaeEncoderTile: 64, vaeDecoderTile: 1, signal: inVae.signal, onProgress: (s, d, t) => s === stage && t > 1 && (passes.push(d), d === 1 && inVae.abort(new Error(`stop in ${s}`))) });
      await expect(run).rejects.toThrow(`stop in ${stage}`);
      expect(passes).toEqual([1]);
      expect(tf.memory().numTensors).toBe(before);
    }
  });
});
