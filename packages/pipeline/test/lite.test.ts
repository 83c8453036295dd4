import * as tf from '@tensorflow/tfjs-core';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bytesFolder, useBackend, writeSafetensors } from '@codiff/nn';
import { loadCave } from '@codiff/cave/node';
import { UNet2DConditionModel, unetConfigFromDiffusers, unetConfigToDiffusers } from '@codiff/sd-unet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backendsUnderTest, golden } from '../../../test-support/tfjs.js';
import {
  CodiffGenerator,
  loadModelFolder,
  LumaPostFilter,
  PipelineError,
  PixelUnshuffleAutoencoder,
  pixelUnshuffleConfig,
  POST_FILTER_CLASSES,
  POST_FILTER_FEATURES,
  POST_FILTER_FILE,
  postFilterSmoothed,
  restoreImage,
  smoothBlockEdges,
  type Pixels,
} from '../src/index.js';
import { loadCodiffFolder, readCodiffCheckpoint, saveCodiffCheckpoint, saveCodiffModel } from '../src/node.js';

const BACKENDS = await backendsUnderTest();

/** A diffusers config of codiff-lite's shape at test size: pixel-unshuffle ×4 (48 channels), two levels, mid-block cross-attention. */
const LITE_UNET = {
  in_channels: 48,
  out_channels: 48,
  block_out_channels: [32, 64],
  layers_per_block: 1,
  attention_head_dim: [1, 2],
  cross_attention_dim: 16,
  down_block_types: ['DownBlock2D', 'DownBlock2D'],
  up_block_types: ['UpBlock2D', 'UpBlock2D'],
};

const ramp = (shape: [number, number, number, number]) => tf.tidy(() => tf.sin(tf.reshape(tf.range(0, shape.reduce((a, d) => a * d, 1)), shape)) as tf.Tensor4D);

for (const backend of BACKENDS) {
  describe(`pixel-unshuffle stand-in on ${backend}`, () => {
    beforeAll(async () => {
      await useBackend(backend);
    });

    it('decodes exactly as TF’s depthToSpace and encodes its exact inverse; gradients pass through', async () => {
      const ae = new PixelUnshuffleAutoencoder(pixelUnshuffleConfig(4));
      expect(ae.config).toEqual({ factor: 4, imageChannels: 3, latentChannels: 48, scalingFactor: 1 });
      const z = ramp([2, 3, 5, 48]);
      const image = ae.decode(z);
      expect(image.shape).toEqual([2, 12, 20, 3]);
      const reference = tf.depthToSpace(z, 4);
      expect(await image.data()).toEqual(await reference.data());
      const { mean, std } = ae.encode(image);
      expect(await mean.data()).toEqual(await z.data());
      expect(await std.data()).toEqual(new Float32Array([0]));
      const grad = tf.grad((x: tf.Tensor) => tf.sum(tf.mul(ae.encode(x as tf.Tensor4D).mean, z)))(image);
      expect(await grad.data()).toEqual(await image.data());
      tf.dispose([z, image, reference, mean, std, grad]);
    });
  });
}

describe('pixel-unshuffle stand-in: errors', () => {
  it('names the shapes it cannot take', async () => {
    await useBackend('cpu');
    const ae = new PixelUnshuffleAutoencoder(pixelUnshuffleConfig(4));
    const x = tf.zeros([1, 10, 12, 3]) as tf.Tensor4D;
    expect(() => ae.encode(x)).toThrow(/multiples of 4 \(got 10×12×3\)/);
    expect(() => ae.decode(tf.zeros([1, 2, 2, 12]) as tf.Tensor4D)).toThrow(/48-channel latents \(got 12\)/);
    expect(() => pixelUnshuffleConfig(0)).toThrow(PipelineError);
    expect(() => PixelUnshuffleAutoencoder.fromConfigJson({ _class_name: 'AutoencoderKL' })).toThrow(/not a PixelUnshuffle configuration/);
    x.dispose();
  });
});

describe('a generator with a UNet trained in full on the stand-in (codiff-lite’s shape, wasm)', () => {
  let g: CodiffGenerator;
  const dir = mkdtempSync(join(tmpdir(), 'codiff-lite-'));
  beforeAll(async () => {
    await useBackend('wasm');
    const unet = new UNet2DConditionModel(unetConfigFromDiffusers(LITE_UNET));
    g = new CodiffGenerator({ unet, vae: new PixelUnshuffleAutoencoder(pixelUnshuffleConfig(4)), cave: await loadCave(golden('codiff-tiny', 'cave.pth')) }, { training: 'full' });
  });
  afterAll(() => g.dispose());

  it('trains every UNet parameter and proj, no adapters; its checkpoint holds proj alone', async () => {
    const names = g.trainableParameters().map(([n]) => n);
    const unetNames = [...g.unet.namedTrainableParameters()].map(([n]) => `unet.${n}`);
    expect(names).toEqual([...unetNames, 'proj.weight', 'proj.bias']);
    expect(g.unetLora.layers.size + g.vaeLora.layers.size).toBe(0);
    const checkpoint = await g.toCheckpoint();
    expect([...checkpoint.tensors.keys()]).toEqual(['proj.weight', 'proj.bias']);
    // It round-trips through safetensors (no conv_in.base_layer needed without adapters) and loads back.
    await saveCodiffCheckpoint(checkpoint, join(dir, 'proj.safetensors'));
    const back = await readCodiffCheckpoint(join(dir, 'proj.safetensors'));
    expect(back.modules).toEqual(checkpoint.modules);
    g.loadCheckpoint(back);
    expect(() => new CodiffGenerator({ unet: g.unet, vae: g.vae, cave: g.cave }, { training: 'full', modules: { ...back.modules, unetOthers: ['mid_block.resnets.0.conv1'] } })).toThrow(
      /takes no LoRA adapters/,
    );
  });

  it('saves as a model folder that loadCodiffFolder reads back to the same restoration', async () => {
    expect(unetConfigFromDiffusers(unetConfigToDiffusers(g.unet.config))).toEqual(g.unet.config);
    const model = join(dir, 'model');
    await saveCodiffModel(g, model);
    expect(readdirSync(model).sort()).toEqual(['cave.safetensors', 'codiff.safetensors', 'unet', 'vae']);
    const loaded = await loadCodiffFolder(model);
    expect(loaded.training).toBe('full');
    expect(loaded.vae).toBeInstanceOf(PixelUnshuffleAutoencoder);
    const lq = tf.tidy(() => tf.add(tf.mul(ramp([1, 64, 96, 3]), 0.4), 0.5) as tf.Tensor4D);
    const [a, b] = [g.forward(lq), loaded.forward(lq)];
    expect(await b.image.data()).toEqual(await a.image.data());
    // The same folder through a file reader (what a page does with fetch) gives the same generator.
    const reader = (read: (path: string) => Promise<Uint8Array | undefined>) => bytesFolder('served', read);
    const fromDisk = (path: string) => readFile(join(model, path)).then((b) => new Uint8Array(b), () => undefined);
    // With a listing (a site's manifest), every file is read once and no other name is tried; host: 'sd' leaves
    // this small UNet on the device.
    const listed = new Set(['unet/config.json', 'unet/diffusion_pytorch_model.safetensors', 'vae/config.json', 'codiff.safetensors', 'cave.safetensors']);
    const reads: string[] = [];
    const served = bytesFolder('served', (path) => (reads.push(path), listed.has(path) ? fromDisk(path) : Promise.resolve(undefined)), async (path) => listed.has(path));
    const viaReader = await loadModelFolder(served, { host: 'sd' });
    expect(reads.sort()).toEqual([...listed].sort());
    expect(new Set(viaReader.unet.parameters().map((p) => p.placement))).toEqual(new Set(['device']));
    const r = viaReader.forward(lq);
    expect(await r.image.data()).toEqual(await a.image.data());
    tf.dispose(Object.values(r));
    viaReader.dispose();
    await expect(loadModelFolder(reader((path) => (path === 'cave.safetensors' ? Promise.resolve(undefined) : fromDisk(path))))).rejects.toThrow(
      'served/ is not a CODiff model folder: missing cave.safetensors or cave.pth',
    );
    // A CaVE that does not load (after the UNet was built): named, and nothing stays allocated.
    const before = tf.memory().numTensors;
    const noCave = (path: string) => (path === 'cave.safetensors' ? Promise.resolve(writeSafetensors({ 'm_head.weight': { shape: [1], data: new Float32Array(1) } })) : fromDisk(path));
    await expect(loadModelFolder(reader(noCave))).rejects.toThrow(/not a CaVE state dict/);
    expect(tf.memory().numTensors).toBe(before);
    // F16 (the shipped form) stays within half precision of the weights.
    const half = join(dir, 'half');
    await saveCodiffModel(g, half, 'F16');
    const h = await loadCodiffFolder(half);
    const c = h.forward(lq);
    const err = tf.tidy(() => tf.max(tf.abs(tf.sub(c.image, a.image))).dataSync()[0]);
    expect(err).toBeLessThan(2e-2);
    for (const out of [a, b, c]) tf.dispose(Object.values(out));
    lq.dispose();
    loaded.dispose();
    h.dispose();
  });

  it('a model folder’s postfilter.safetensors is loaded, and run on request between two smoothings; a broken one is named', async () => {
    const model = join(dir, 'model');
    // A filter that moves every pixel of block column 2 by +7 and the rest by its JPEG-minus-restored luma / 2.
    const weights = new Float32Array(POST_FILTER_CLASSES * POST_FILTER_FEATURES);
    for (let c = 0; c < POST_FILTER_CLASSES; c++) {
      const row = weights.subarray(c * POST_FILTER_FEATURES, (c + 1) * POST_FILTER_FEATURES);
      if (((c / 24) | 0) % 8 === 2) row[POST_FILTER_FEATURES - 1] = 7;
      else [row[12], row[25 + 4]] = [-0.5, 0.5];
    }
    const filter = new LumaPostFilter(weights, { photos: 'none: made by this test' });
    const image: Pixels = { width: 40, height: 32, channels: 3, data: Uint8Array.from({ length: 40 * 32 * 3 }, (_, i) => (i * 29) % 256) };
    // Without the file: no filter, and asking for it is a named error.
    const without = await loadCodiffFolder(model);
    expect(without.postFilter).toBeUndefined();
    await expect(restoreImage(without, image, { postFilter: true })).rejects.toThrow(/postFilter: this model has no luma post-filter \(a model folder's postfilter.safetensors; codiff train postfilter fits one\)/);
    without.dispose();

    writeFileSync(join(model, POST_FILTER_FILE), filter.toSafetensors());
    const loaded = await loadCodiffFolder(model);
    expect(loaded.postFilter?.weights).toEqual(weights);
    expect(loaded.postFilter?.provenance).toEqual({ photos: 'none: made by this test' });
    const alone = await restoreImage(loaded, image, { deblock: false });
    for (const grid of [{ top: 0, left: 0 }, { top: 3, left: 5 }]) {
      const smoothed = smoothBlockEdges(alone, grid).image;
      // The default leaves the filter out; postFilter runs it after the smoothing and smooths again.
      expect(await restoreImage(loaded, image, { grid })).toEqual(smoothed);
      const filtered = await restoreImage(loaded, image, { grid, postFilter: true });
      expect(filtered).toEqual(smoothBlockEdges(filter.apply(smoothed, image, grid), grid).image);
      // The same step on the kept default restore, without the model.
      expect(postFilterSmoothed(loaded.postFilter!, smoothed, image, grid)).toEqual(filtered);
    }
    await expect(restoreImage(loaded, image, { postFilter: true, deblock: false })).rejects.toThrow(/postFilter runs after the block-edge smoothing, which is off here/);
    loaded.dispose();
    writeFileSync(join(model, POST_FILTER_FILE), writeSafetensors({ weight: { shape: [2], data: new Float32Array(2) } }));
    const before = tf.memory().numTensors;
    await expect(loadCodiffFolder(model)).rejects.toThrow(/postfilter.safetensors is not a luma post-filter of this version/);
    expect(tf.memory().numTensors).toBe(before);
    rmSync(join(model, POST_FILTER_FILE));
  });

  it('restoreImage runs it untiled (no VAE tiles), as forward, keeping the official tiles’ 768-px footprint', async () => {
    const w = 72, h = 40;
    const data = Uint8Array.from({ length: w * h * 3 }, (_, i) => (i * 53) % 256);
    const image: Pixels = { width: w, height: h, channels: 3, data };
    const stages: string[] = [];
    const before = tf.memory().numTensors;
    const out = await restoreImage(g, image, { color: 'none', deblock: false, onProgress: (s, d, t) => stages.push(`${s} ${d}/${t}`) });
    expect(tf.memory().numTensors).toBe(before);
    expect(stages).toEqual(['encode 1/1', 'unet 1/1', 'decode 1/1']);
    // By default a stand-in model's restoration ends with block-edge smoothing, on the aligned grid unless told.
    expect(await restoreImage(g, image, { color: 'none' })).toEqual(smoothBlockEdges(out).image);
    expect(await restoreImage(g, image, { color: 'none', grid: { top: 3, left: 5 } })).toEqual(smoothBlockEdges(out, { top: 3, left: 5 }).image);
    const direct = tf.tidy(() => {
      const y = g.forward(tf.div(tf.tensor4d(data, [1, h, w, 3], 'float32'), 255) as tf.Tensor4D).image;
      return tf.cast(tf.floor(tf.mul(tf.add(tf.mul(y, 0.5), 0.5), 255)), 'int32');
    });
    const ref = await direct.data();
    direct.dispose();
    let off = 0;
    out.data.forEach((v, i) => (off += Math.abs(v - ref[i]) > 1 ? 1 : 0));
    expect(off).toBe(0);
    // At ×4 the default tile is 96·8/4 = 192 latents (768 px, as SD's 96 at ×8): a 760×400 image (latent 190×100) is
    // one UNet call; a 16-latent tile forces several.
    const big: Pixels = { width: 760, height: 400, channels: 3, data: Uint8Array.from({ length: 760 * 400 * 3 }, (_, i) => (i * 29) % 256) };
    const calls = async (options: { tile?: number; overlap?: number }) => {
      let n = 0;
      await restoreImage(g, big, { ...options, onProgress: (s, _d, t) => s === 'unet' && (n = t) });
      return n;
    };
    expect(await calls({})).toBe(1);
    expect(await calls({ tile: 16, overlap: 4 })).toBeGreaterThan(1);
  });

  it('residual: ε gets the input skip κ·z, so a UNet whose output is zero returns the JPEG itself; the flag travels in the checkpoint', async () => {
    const r = new CodiffGenerator({ unet: g.unet, vae: g.vae, cave: g.cave }, { training: 'full', residual: true });
    const out = g.unet.convOut!;
    const saved = [await out.weight.toHost(), await out.bias!.toHost()];
    for (const p of [out.weight, out.bias!]) p.assign({ shape: p.torchShape, data: new Float32Array(p.size) });
    const lq = tf.tidy(() => tf.add(tf.mul(ramp([1, 32, 40, 3]), 0.4), 0.5) as tf.Tensor4D);
    const o = r.forward(lq);
    const err = tf.tidy(() => tf.max(tf.abs(tf.sub(o.image, tf.sub(tf.mul(lq, 2), 1)))).dataSync()[0]);
    expect(err).toBeLessThan(1e-6);
    tf.dispose(Object.values(o));
    lq.dispose();
    out.weight.assign(saved[0]);
    out.bias!.assign(saved[1]);
    const file = join(dir, 'residual.safetensors');
    await saveCodiffCheckpoint(await r.toCheckpoint(), file);
    expect((await readCodiffCheckpoint(file)).residual).toBe(true);
    r.proj.dispose();
  });

  it('an SD-based generator is not saved as a folder', async () => {
    const sdLike = { ...g, training: 'lora' } as unknown as CodiffGenerator;
    await expect(saveCodiffModel(sdLike, join(dir, 'no'))).rejects.toThrow(/only a fully trained UNet/);
  });
});
