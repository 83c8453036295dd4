import * as tf from '@tensorflow/tfjs-core';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { useBackend } from '@codiff/nn';
import { loadCave } from '@codiff/cave/node';
import { CodiffGenerator } from '@codiff/pipeline';
import { readCodiffCheckpoint } from '@codiff/pipeline/node';
import { loadUNet, loadVae } from '@codiff/sd-unet/node';
import { beforeAll, describe, expect, it } from 'vitest';
import { golden, sharedPhotos } from '../../../test-support/golden.js';
import { initGenerator } from '../src/index.js';
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
async function validationMse(g: CodiffGenerator): Promise<number> {
  const v = await centrePairs(base.val!, 192, [10, 30, 50]);
  const mse = tf.tidy(() => {
    const lq = tf.tensor4d(v.lq, [v.size, 192, 192, 3]), hq = tf.tensor4d(v.hq, [v.size, 192, 192, 3]);
    return tf.mean(tf.squaredDifference(tf.add(tf.mul(g.forward(lq).image, 0.5), 0.5), hq));
  });
  const value = (await mse.data())[0];
  mse.dispose();
  return value;
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
    const parts = async () => ({ unet: await loadUNet(join(base.sd, 'unet')), vae: await loadVae(join(base.sd, 'vae')), cave: await loadCave(base.cave) });
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
  });

  it('bad set-ups stop with one line before training', async () => {
    const config = await loadStage2Config('tiny');
    await expect(trainStage2({ ...base, config, out: join(dir, 'x'), sd: join(dir, 'nowhere') })).rejects.toThrow(/nowhere\/unet\/config\.json: no such file/);
    await expect(trainStage2({ ...base, config, out: join(dir, 'y'), data: base.val!, val: undefined, perceptualWeights: dir })).rejects.toThrow(/vgg16\.safetensors: no such file/);
    await expect(loadStage2Config(join(dir, 'missing.json'))).rejects.toThrow(/no configuration/);
    await expect(trainStage2({ ...base, config: { ...config, patch: 1000 }, out: join(dir, 'z') })).rejects.toThrow(/no usable photos \(PNG\/JPEG at least 1008×1008/);
  });
});
