import * as tf from '@tensorflow/tfjs-core';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { useBackend } from '@codiff/nn';
import { loadCave } from '@codiff/cave/node';
import { evaluate } from '@codiff/eval/node';
import { encodePng } from '@codiff/image-io';
import { readImageFile } from '@codiff/image-io/node';
import { crop, toGrey } from '@codiff/jpeg-codec';
import { loadLpipsSqueeze } from '@codiff/losses/node';
import { CodiffGenerator, PixelUnshuffleAutoencoder, pixelUnshuffleConfig, restoreImage, type Pixels } from '@codiff/pipeline';
import { loadCodiffFolder, readCodiffCheckpoint, saveCodiffModel } from '@codiff/pipeline/node';
import { UNet2DConditionModel, unetConfigFromDiffusers } from '@codiff/sd-unet';
import { loadUNet, loadVae } from '@codiff/sd-unet/node';
import { beforeAll, describe, expect, it } from 'vitest';
import { golden, sharedPhotos, sharedWeights } from '../../../test-support/golden.js';
import { AdamW, generatorLosses, gradientsOf, initGenerator, type PerceptualDistance } from '../src/index.js';
import type { Stage2Config } from '../src/index.js';
import { centrePairs, CHECKPOINT_FILE, readCheckpointMetadata, loadStage2Config, trainStage2, type Stage2RunOptions } from '../src/node.js';

let dir = '';
let base: Omit<Stage2RunOptions, 'out' | 'config'>;
beforeAll(async () => {
  await useBackend('wasm');
  dir = mkdtempSync(join(tmpdir(), 'codiff-stage2-'));
  const sd = join(dir, 'sd');
  for (const [folder, name] of [['unet', 'unet-tiny'], ['vae', 'vae-tiny']]) {
    mkdirSync(join(sd, folder), { recursive: true });
    copyFileSync(golden(name, 'config.json'), join(sd, folder, 'config.json'));
    copyFileSync(golden(name, 'weights.safetensors'), join(sd, folder, 'diffusion_pytorch_model.safetensors'));
  }
  const data = join(dir, 'train'), val = join(dir, 'val');
  mkdirSync(data);
  mkdirSync(val);
  for (const name of ['t91_t37.png', 't91_t40.png', 't91_t46.png']) copyFileSync(sharedPhotos('train', name), join(data, name));
  copyFileSync(sharedPhotos('val', 'val20_001.png'), join(val, 'val20_001.png'));
  base = { data, val, sd, cave: golden('codiff-tiny', 'cave.pth'), perceptualWeights: golden('dists-lpips') };
});

/** Mean-latent MSE of a generator on the validation pairs. */
async function validationMse(g: CodiffGenerator, patch = 192): Promise<number> {
  const v = await centrePairs(base.val!, patch, [10, 30, 50]);
  const mse = tf.tidy(() => {
    const lq = tf.tensor4d(v.lq, [v.size, patch, patch, 3]), hq = tf.tensor4d(v.hq, [v.size, patch, patch, 3]);
    return tf.mean(tf.squaredDifference(tf.add(tf.mul(g.forward(lq).image, 0.5), 0.5), hq));
  });
  const value = (await mse.data())[0];
  mse.dispose();
  return value;
}

/** The shipped lite configuration's structure at test size (two levels, 32 and 64 channels). */
function testSized(lite: Stage2Config) {
  return { ...lite, model: { ...lite.model!, unet: { ...lite.model!.unet, block_out_channels: [32, 64], attention_head_dim: [1, 2], down_block_types: ['DownBlock2D', 'DownBlock2D'], up_block_types: ['UpBlock2D', 'UpBlock2D'] } } };
}

describe('stage 2 end to end (tiny SD, CaVE and DISTS on real photos)', () => {
  it('trains generator and discriminator, the restoration improves, and an interrupted run resumes to the same weights', async () => {
    const config = await loadStage2Config('tiny');
    const full = join(dir, 'full');
    const r = await trainStage2({ ...base, config, out: full });
    expect([r.step, r.stopped, r.skipped]).toEqual([config.steps, false, 0]);
    const log = readFileSync(join(full, 'log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    const steps = log.filter((x) => x.type === 'train');
    expect(steps).toHaveLength(config.steps);
    for (const s of steps) for (const k of ['loss', 'mse', 'perceptual', 'gan', 'adversary_loss', 'adversary_bce', 'gradNorm']) expect(Number.isFinite(s[k]), k).toBe(true);
    expect(log.filter((x) => x.type === 'val')).toHaveLength(1);
    const meta = await readCheckpointMetadata(join(full, CHECKPOINT_FILE));
    expect([meta.stage, meta.optimizer_steps, meta.adversary_optimizer_steps]).toEqual(['stage2', String(config.steps), String(config.steps)]);

    // The exported generator restores the validation photo better than the one it started from.
    const parts = async () => ({ unet: await loadUNet(join(base.sd!, 'unet')), vae: await loadVae(join(base.sd!, 'vae')), cave: await loadCave(base.cave) });
    const start = new CodiffGenerator(await parts(), { rankUnet: config.rankUnet, rankVae: config.rankVae, loraAlpha: config.loraAlpha });
    initGenerator(start, config.seed);
    const trained = CodiffGenerator.fromCheckpoint(await parts(), await readCodiffCheckpoint(join(full, 'codiff.safetensors')));
    const [before, after] = [await validationMse(start), await validationMse(trained)];
    expect(after).toBeLessThan(before);
    console.info(`validation MSE ${before.toFixed(4)} → ${after.toFixed(4)} after ${config.steps} steps`);
    start.dispose();
    trained.dispose();

    // Stopped after step 2 (as Ctrl-C does), then resumed: the same generator, bit for bit.
    const split = join(dir, 'split');
    const controller = new AbortController();
    const first = await trainStage2({ ...base, config, out: split, signal: controller.signal, onProgress: (p) => p.step === 2 && controller.abort() });
    expect([first.step, first.stopped]).toEqual([2, true]);
    const resumed = await trainStage2({ ...base, config, out: split, resume: true });
    expect(resumed.step).toBe(config.steps);
    expect(readFileSync(join(split, 'codiff.safetensors'))).toEqual(readFileSync(join(full, 'codiff.safetensors')));
    // Three runs of a tiny SD on 2 cores: about 100 s.
  }, 300_000);

  it('bad set-ups stop with one line before training', async () => {
    const config = await loadStage2Config('tiny');
    await expect(trainStage2({ ...base, config, out: join(dir, 'x'), sd: join(dir, 'nowhere') })).rejects.toThrow(/nowhere\/unet\/config\.json: no such file/);
    await expect(trainStage2({ ...base, config, out: join(dir, 'y'), data: base.val!, val: undefined, perceptualWeights: dir })).rejects.toThrow(/vgg16\.safetensors: no such file/);
    await expect(loadStage2Config(join(dir, 'missing.json'))).rejects.toThrow(/no configuration/);
    await expect(trainStage2({ ...base, config: { ...config, patch: 1000 }, out: join(dir, 'z') })).rejects.toThrow(/no usable photos \(PNG\/JPEG at least 1008×1008/);
  });

  it('lite: trains a UNet from scratch on the pixel-unshuffle stand-in (LPIPS-squeeze, no GAN), writes a model folder, resumes bit for bit', async () => {
    const lite = await loadStage2Config('lite');
    expect([lite.model?.pixelUnshuffle, lite.perceptual, lite.gan]).toEqual([4, 'lpips-squeeze', false]);
    const config = {
      ...testSized(lite),
      batchSize: 2,
      steps: 4,
      checkpointEvery: 2,
      validateEvery: 4,
    };
    const opts = { ...base, sd: undefined, perceptualWeights: sharedWeights() };
    const full = join(dir, 'lite-full');
    const r = await trainStage2({ ...opts, config, out: full });
    expect([r.step, r.stopped]).toEqual([4, false]);
    const steps = readFileSync(join(full, 'log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((x) => x.type === 'train');
    for (const s of steps) expect(s.gan).toBe(0);
    const trained = await loadCodiffFolder(join(full, 'model'));
    expect(trained.training).toBe('full');
    const start = new CodiffGenerator({ unet: new UNet2DConditionModel(unetConfigFromDiffusers(config.model.unet)), vae: trained.vae, cave: await loadCave(base.cave) }, { training: 'full' });
    initGenerator(start, config.seed);
    const [before, after] = [await validationMse(start, 64), await validationMse(trained, 64)];
    expect(after).toBeLessThan(before);
    start.dispose();
    trained.dispose();

    const split = join(dir, 'lite-split');
    const controller = new AbortController();
    await trainStage2({ ...opts, config, out: split, signal: controller.signal, onProgress: (p) => p.step === 2 && controller.abort() });
    await trainStage2({ ...opts, config, out: split, resume: true });
    const unetFile = join('model', 'unet', 'diffusion_pytorch_model.safetensors');
    expect(readFileSync(join(split, unetFile))).toEqual(readFileSync(join(full, unetFile)));
    expect(readFileSync(join(split, 'model', 'codiff.safetensors'))).toEqual(readFileSync(join(full, 'model', 'codiff.safetensors')));

    // --init from the model folder: one step at a vanishing rate leaves the loaded UNet and projection in place.
    const tiny = { ...config, steps: 1, seed: config.seed + 1, optimizer: { ...config.optimizer, lr: 1e-12 } };
    await trainStage2({ ...opts, config: tiny, out: join(dir, 'lite-init'), init: join(full, 'model') });
    const [from, to] = [await loadCodiffFolder(join(full, 'model')), await loadCodiffFolder(join(dir, 'lite-init', 'model'))];
    const [a, b] = [new Map(from.trainableParameters()), new Map(to.trainableParameters())];
    expect([...b.keys()]).toEqual([...a.keys()]);
    for (const [name, p] of a) {
      const [x, y] = [await p.toHost(), await b.get(name)!.toHost()];
      let worst = 0;
      x.data.forEach((v, i) => (worst = Math.max(worst, Math.abs(v - y.data[i]))));
      expect(worst, name).toBeLessThan(1e-9);
    }
    from.dispose();
    to.dispose();

    // The block-edge term, when weighted, is logged and added to the loss.
    const edged = { ...tiny, weights: { ...config.weights, blockEdges: 0.5 } };
    await trainStage2({ ...opts, config: edged, out: join(dir, 'lite-edges'), init: join(full, 'model') });
    const [first] = readFileSync(join(dir, 'lite-edges', 'log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(first.blockEdges).toBeGreaterThan(0);
    expect(first.loss).toBeCloseTo(first.mse + config.weights.perceptual * first.perceptual + 0.5 * first.blockEdges, 6);
    expect(steps[0].blockEdges).toBeUndefined();
  });

  it('lite: validation on whole photos reports what codiff eval measures, and a resumed run may switch to it', async () => {
    const lite = await loadStage2Config('lite');
    const config = {
      ...testSized(lite),
      batchSize: 2,
      steps: 1,
      checkpointEvery: 1,
      validateEvery: 1,
    };
    // A colour photo and a grey one (one channel through restore and metrics, as codiff eval reads it).
    const val = join(dir, 'val-photos');
    mkdirSync(val);
    copyFileSync(sharedPhotos('val', 'val20_001.png'), join(val, 'a.png'));
    writeFileSync(join(val, 'b.png'), encodePng(crop(toGrey(await readImageFile(sharedPhotos('val', 'val20_002.png'))), 40, 30, 150, 100)));
    const opts = { ...base, val, sd: undefined, perceptualWeights: sharedWeights() };
    const out = join(dir, 'lite-photos');
    await trainStage2({ ...opts, config, out });
    // Same identity: the patches-validated checkpoint resumes with whole photos.
    const lines: string[] = [];
    await trainStage2({ ...opts, config: { ...config, steps: 2, validation: 'photos' }, out, resume: true, onLog: (l) => lines.push(l) });
    expect(lines).toContain('validating: restoring 2 photos whole (4 JPEGs)');
    const [patches, photos] = readFileSync(join(out, 'log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((r) => r.type === 'val');
    expect(Object.keys(patches).sort()).toEqual(['mse', 'psnr', 'step', 'type']);
    expect(photos.step).toBe(2);
    expect(Object.keys(photos).filter((k) => k.includes('_q')).sort()).toEqual([
      'lpips_q10', 'lpips_q30', 'modelPsnrB_q10', 'modelPsnrB_q30', 'modelPsnrY_q10', 'modelPsnrY_q30', 'psnrB_q10', 'psnrB_q30', 'psnrY_q10', 'psnrY_q30',
    ]);

    // The exported step-2 model through @codiff/eval's own loop: the same numbers, for the default restore and for
    // the model alone (codiff-lite's restore without its block-edge smoothing, as `codiff eval --no-deblock`).
    const g = await loadCodiffFolder(join(out, 'model'));
    const lpips = await loadLpipsSqueeze(sharedWeights('squeezenet1_1', 'features.safetensors'), sharedWeights('lpips', 'squeeze.safetensors'));
    const evaluation = await evaluate({
      sets: [{ name: 'val', files: [join(val, 'a.png'), join(val, 'b.png')] }],
      qualities: [10, 30],
      protocol: 'full',
      restorer: { name: 'restored', restore: (_path, decoded) => restoreImage(g, decoded as Pixels) },
      compare: [{ name: 'alone', restore: (_path, decoded) => restoreImage(g, decoded as Pixels, { deblock: false }) }],
      models: { lpips },
      maxPixels: Infinity,
    });
    for (const row of evaluation.summary.filter((r) => r.method === 'restored')) {
      expect(photos[`psnrY_q${row.qf}`], `psnrY_q${row.qf}`).toBeCloseTo(row.psnr!, 9);
      expect(photos[`psnrB_q${row.qf}`], `psnrB_q${row.qf}`).toBeCloseTo(row.psnrB!, 9);
      expect(photos[`lpips_q${row.qf}`], `lpips_q${row.qf}`).toBeCloseTo(row.lpips!, 6);
    }
    const alone = evaluation.summary.filter((r) => r.method === 'alone');
    expect(alone.map((r) => r.qf)).toEqual([10, 30]);
    for (const row of alone) {
      expect(photos[`modelPsnrY_q${row.qf}`], `modelPsnrY_q${row.qf}`).toBeCloseTo(row.psnr!, 9);
      expect(photos[`modelPsnrB_q${row.qf}`], `modelPsnrB_q${row.qf}`).toBeCloseTo(row.psnrB!, 9);
    }
    expect(photos.modelPsnrB_q10).not.toBeCloseTo(photos.psnrB_q10, 3);
    // The restoration is measured, not the JPEG: at QF 10 a 1-step model's output is far from the input's PSNR-Y.
    const jpeg10 = evaluation.summary.find((r) => r.method === 'jpeg' && r.qf === 10)!;
    expect(Math.abs(photos.psnrY_q10 - jpeg10.psnr!)).toBeGreaterThan(0.01);
    lpips.trunk.dispose();
    lpips.dispose();
    g.dispose();

    const file = join(dir, 'bad-validation.json');
    writeFileSync(file, JSON.stringify({ ...lite, validation: 'whole' }));
    await expect(loadStage2Config(file)).rejects.toThrow(/validation must be "patches" or "photos" \(got "whole"\)/);
  });

  it('lite: a perceptual term at weight 0 is logged but sends no gradient back through its network', async () => {
    const small = testSized(await loadStage2Config('lite'));
    const g = new CodiffGenerator(
      { unet: new UNet2DConditionModel(unetConfigFromDiffusers(small.model!.unet)), vae: new PixelUnshuffleAutoencoder(pixelUnshuffleConfig(4)), cave: await loadCave(base.cave) },
      { training: 'full', residual: true },
    );
    initGenerator(g, 7);
    // A distance that counts its backward passes (mean |a − b| per pair).
    let backward = 0;
    const counting: PerceptualDistance = {
      score: (a, b) =>
        tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
          const [x, save] = args as [tf.Tensor4D, tf.GradSaveFunc];
          save([x]);
          const value = tf.mean(tf.abs(tf.sub(x, b)), [1, 2, 3]) as tf.Tensor1D;
          return { value, gradFunc: (dy, [saved]) => (backward++, tf.mul(tf.reshape(dy, [-1, 1, 1, 1]), tf.div(tf.sign(tf.sub(saved, b)), 64 * 64 * 3))) };
        })(a) as tf.Tensor1D,
    };
    const batch = { lq: tf.randomUniform([1, 64, 64, 3], 0, 1, 'float32', 1) as tf.Tensor4D, hq: tf.randomUniform([1, 64, 64, 3], 0, 1, 'float32', 2) as tf.Tensor4D };
    const optimiser = new AdamW(g.trainableParameters(), { lr: 1e-4 });
    const step = (perceptual: number) => {
      let logged = 0;
      const { value, grads } = gradientsOf(() => {
        const l = generatorLosses(g, counting, undefined, batch, { weights: { ...small.weights, perceptual } });
        logged = l.perceptual.dataSync()[0];
        return l.total;
      }, optimiser);
      const norm = Math.sqrt([...grads.values()].reduce((s, t) => s + tf.sum(tf.square(t)).dataSync()[0], 0));
      tf.dispose([value, ...grads.values()]);
      return { logged, norm };
    };
    const off = step(0);
    expect(backward).toBe(0);
    expect(off.logged).toBeGreaterThan(0.1);
    const on = step(1);
    expect(backward).toBe(1);
    expect(on.logged).toBeCloseTo(off.logged, 6);
    expect(on.norm).not.toBeCloseTo(off.norm, 3);
    tf.dispose([batch.lq, batch.hq]);
    g.dispose();
  });

  it('lite set-ups that cannot work stop with one line', async () => {
    const lite = await loadStage2Config('lite');
    const opts = { ...base, sd: undefined, perceptualWeights: sharedWeights() };
    await expect(trainStage2({ ...opts, config: lite, sd: base.sd, out: join(dir, 'l1') })).rejects.toThrow(/takes no --sd/);
    await expect(trainStage2({ ...base, sd: undefined, config: await loadStage2Config('tiny'), out: join(dir, 'l2') })).rejects.toThrow(/give its diffusers folder \(--sd\)/);
    const file = join(dir, 'bad-lite.json');
    writeFileSync(file, JSON.stringify({ ...lite, gan: true }));
    await expect(loadStage2Config(file)).rejects.toThrow(/no pretrained UNet for the discriminator/);
    writeFileSync(file, JSON.stringify({ ...lite, weights: { ...lite.weights, blockEdges: -1 } }));
    await expect(loadStage2Config(file)).rejects.toThrow(/weights.blockEdges must be non-negative \(got -1\)/);
    writeFileSync(file, JSON.stringify({ ...lite, greyFraction: 1.5 }));
    await expect(loadStage2Config(file)).rejects.toThrow(/greyFraction must be in 0..1 \(got 1.5\)/);
    writeFileSync(file, JSON.stringify({ ...lite, model: { ...lite.model, unet: { ...lite.model!.unet, in_channels: 12 } } }));
    await expect(loadStage2Config(file)).rejects.toThrow(/in_channels must be pixelUnshuffle² · 3 = 48 \(got 12\)/);
    writeFileSync(file, JSON.stringify({ ...lite, rankUnet: 16 }));
    await expect(loadStage2Config(file)).rejects.toThrow(/has no LoRA/);
    // --init takes a model folder of the same configuration.
    const small = testSized(lite);
    await expect(trainStage2({ ...opts, config: small, init: golden('codiff-tiny', 'cave.pth'), out: join(dir, 'l3') })).rejects.toThrow(/--init .*cave\.pth: a from-scratch configuration starts from a model folder/);
    await expect(trainStage2({ ...opts, config: small, init: dir, out: join(dir, 'l4') })).rejects.toThrow(/--init .*: .*is not a CODiff model folder: missing unet\/config\.json/);
    const other = join(dir, 'other-model');
    const wider = new CodiffGenerator(
      { unet: new UNet2DConditionModel(unetConfigFromDiffusers({ ...small.model.unet, block_out_channels: [32, 96] })), vae: new PixelUnshuffleAutoencoder(pixelUnshuffleConfig(4)), cave: await loadCave(base.cave) },
      { training: 'full', residual: small.model.residual },
    );
    await saveCodiffModel(wider, other);
    wider.dispose();
    await expect(trainStage2({ ...opts, config: small, init: other, out: join(dir, 'l5') })).rejects.toThrow(/--init .*other-model: .*shape mismatches: /);
  });
});
