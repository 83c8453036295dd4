import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { Linear, Module, useBackend } from '@codiff/nn';
import { readSafetensorsFile } from '@codiff/nn/node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sharedPhotos } from '../../../test-support/golden.js';
import { flatPng } from '../../../test-support/hostile-images.js';
import { CaVE } from '@codiff/cave';
import { loadCave } from '@codiff/cave/node';
import { AdamW, clipGradNorm, learningRateAt, officialInit } from '../src/index.js';
import { loadStage1Config, loadStage2Config, readCheckpointMetadata, scanPhotoFolder, train, trainStage1, writeCurves, type TrainingTask } from '../src/node.js';

const CLI = resolve(__dirname, '../../cli/dist/bin.js');
const work = mkdtempSync(join(tmpdir(), 'codiff-train-'));
afterAll(() => spawnSync('rm', ['-rf', work]));

/** A few real training photos (BSDS500 at 240×160 and T91) in a folder of their own. */
function photoFolder(name: string, files: string[]): string {
  const dir = join(work, name);
  mkdirSync(dir, { recursive: true });
  for (const f of files) copyFileSync(sharedPhotos('train', f), join(dir, f));
  return dir;
}
const PHOTOS = ['bsds500_test_100007.png', 'bsds500_test_100039.png', 'bsds500_test_100099.png', 'bsds500_test_10081.png', 't91_t55.png'];

/** A tiny stage-1 configuration for runs of a few seconds. */
function tinyConfig(overrides: Record<string, unknown> = {}): string {
  const path = join(work, `tiny-${Math.random().toString(36).slice(2)}.json`);
  const config = {
    stage: 'stage1', name: 'tiny', model: { channels: [4, 8, 12, 16], blocks: 1 }, patch: 32, batchSize: 2, accumulate: 1,
    optimizer: { type: 'adam', lr: 1e-3 }, steps: 12, checkpointEvery: 4, validateEvery: 6, seed: 5, ...overrides,
  };
  writeFileSync(path, JSON.stringify(config));
  return path;
}

const cli = (args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 120_000, env: { ...process.env, CODIFF_WASM_THREADS: '' } });

describe('codiff train stage1 (child processes on wasm)', () => {
  let data: string;
  beforeAll(() => {
    data = photoFolder('data', PHOTOS);
  });

  it('a run killed with SIGKILL between checkpoints resumes to the same parameters, bit for bit, as an uninterrupted run', async () => {
    const STEPS = 30;
    const config = tinyConfig({ steps: STEPS, checkpointEvery: 8 });
    const whole = join(work, 'whole'), killed = join(work, 'killed');
    const r = cli(['train', 'stage1', '--config', config, '--data', data, '--out', whole, '--val', data]);
    // Validation every 6 steps is the only thing said on stderr.
    expect(r.stderr.trim().split('\n')).toEqual([6, 12, 18, 24, 30].map((k) => expect.stringMatching(new RegExp(`^step ${k} validation: reconstructionL1 [\\d.]+, qfMae [\\d.]+$`))));
    expect(r.stdout).toMatch(/finished at step 30 in \d+ s on wasm × \d threads; data wait [\d.]+ % of step time; run in/);

    // Kill once the log has passed step 9 (a checkpoint at 8 exists, the next comes at 16).
    const child = spawn(process.execPath, [CLI, 'train', 'stage1', '--config', config, '--data', data, '--out', killed], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const exited = new Promise<number | null>((done) => child.on('exit', done));
    const killedEarly = await new Promise<boolean>((done) => {
      const poll = setInterval(() => {
        let steps = 0;
        try {
          steps = readFileSync(join(killed, 'log.jsonl'), 'utf8').split('\n').filter(Boolean).length;
        } catch {}
        if (steps >= 9) {
          clearInterval(poll);
          done(child.kill('SIGKILL'));
        }
      }, 20);
      // A child that ends on its own before step 9 fails the test with its exit code and stderr, not a timeout.
      exited.then(() => {
        clearInterval(poll);
        done(false);
      });
    });
    const code = await exited;
    expect(killedEarly, `the run ended by itself (exit ${code}): ${stderr}`).toBe(true);
    const meta = await readCheckpointMetadata(join(killed, 'checkpoint.safetensors'));
    expect(Number(meta.step)).toBeGreaterThanOrEqual(8);
    expect(Number(meta.step)).toBeLessThan(STEPS);
    const resumed = cli(['train', 'stage1', '--config', config, '--data', data, '--out', killed, '--resume']);
    expect(resumed.stderr).toMatch(new RegExp(`resumed .*killed at step ${meta.step}`));
    expect(resumed.stdout).toMatch(/finished at step 30/);

    const a = await readSafetensorsFile(join(whole, 'checkpoint.safetensors'));
    const b = await readSafetensorsFile(join(killed, 'checkpoint.safetensors'));
    expect([...b.keys()].sort()).toEqual([...a.keys()].sort());
    for (const [k, t] of a) expect(Buffer.from(b.get(k)!.data.buffer).equals(Buffer.from(t.data.buffer)), k).toBe(true);
    // The log holds each step once (the steps after the checkpoint were rewritten).
    const steps = readFileSync(join(killed, 'log.jsonl'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l)).filter((l) => l.type === 'train').map((l) => l.step);
    expect(steps).toEqual(Array.from({ length: STEPS }, (_, i) => i + 1));
  }, 300_000);

  it('--init starts a new run from trained weights; a checkpoint of another configuration is named', () => {
    const config = tinyConfig({ steps: 1, checkpointEvery: 1 });
    const fresh = cli(['train', 'stage1', '--config', config, '--data', data, '--out', join(work, 'fresh-1')]);
    const from = cli(['train', 'stage1', '--config', config, '--data', data, '--out', join(work, 'init-1'), '--init', join(work, 'whole', 'cave.safetensors')]);
    expect(from.status, from.stderr).toBe(0);
    const firstLoss = (dir: string) => JSON.parse(readFileSync(join(work, dir, 'log.jsonl'), 'utf8').split('\n')[0]).loss as number;
    expect(fresh.status, fresh.stderr).toBe(0);
    // The same first batch: the 30-step weights reconstruct it better than a fresh initialisation.
    expect(firstLoss('init-1')).toBeLessThan(0.8 * firstLoss('fresh-1'));
    const other = cli(['train', 'stage1', '--config', tinyConfig({ model: { channels: [4, 8, 12, 20], blocks: 1 } }), '--data', data, '--out', join(work, 'init-2'), '--init', join(work, 'whole', 'cave.safetensors')]);
    expect(other.stderr.trim()).toMatch(/^codiff: --init .*cave\.safetensors: state dict does not match the model: shape mismatches: m_down3\.1\.weight/);
    const both = cli(['train', 'stage1', '--config', config, '--data', data, '--out', join(work, 'init-1'), '--init', join(work, 'whole', 'cave.safetensors'), '--resume']);
    expect(both.stderr.trim()).toBe('codiff: --init starts a new run; --resume continues one: give one of them');
  }, 120_000);

  it('SIGTERM finishes the step, writes a checkpoint and says how to resume', async () => {
    const out = join(work, 'terminated');
    const child = spawn(process.execPath, [CLI, 'train', 'stage1', '--config', tinyConfig({ steps: 1000 }), '--data', data, '--out', out], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '', stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    await new Promise<void>((done) => {
      const poll = setInterval(() => {
        try {
          if (readFileSync(join(out, 'log.jsonl'), 'utf8').split('\n').length > 3) {
            clearInterval(poll);
            child.kill('SIGTERM');
            done();
          }
        } catch {}
      }, 20);
    });
    const code = await new Promise((done) => child.on('exit', done));
    expect(code).toBe(0);
    expect(stderr).toMatch(/SIGTERM: finishing this step and writing a checkpoint \(resume with --resume; SIGTERM again stops at once\)/);
    const step = Number(/stopped at step (\d+)/.exec(stdout)![1]);
    const logged = readFileSync(join(out, 'log.jsonl'), 'utf8').split('\n').filter(Boolean).length;
    expect(logged).toBe(step);
    // The exported CaVE records the patch its QF head was trained on (estimateQuality tiles by it).
    await useBackend('cpu');
    const cave = await loadCave(join(out, 'cave.safetensors'));
    expect(cave.config.qualityPatch).toBe(32);
    cave.dispose();
  }, 120_000);

  it('refuses to overwrite a run, to resume nothing, and to resume with another configuration', () => {
    const config = tinyConfig({ steps: 2, checkpointEvery: 1 });
    const out = join(work, 'guarded');
    expect(cli(['train', 'stage1', '--config', config, '--data', data, '--out', out]).status).toBe(0);
    const again = cli(['train', 'stage1', '--config', config, '--data', data, '--out', out]);
    expect(again.status).toBe(1);
    expect(again.stderr.trim()).toMatch(/^codiff: .*guarded already holds a run \(checkpoint.safetensors\); pass --resume to continue it, or choose another folder$/);
    const other = cli(['train', 'stage1', '--config', tinyConfig({ steps: 2, checkpointEvery: 1, seed: 9 }), '--data', data, '--out', out, '--resume']);
    expect(other.stderr.trim()).toMatch(/^codiff: .*written with another configuration; resume with the same one/);
    // More steps, another description: the same run, extended.
    const longer = cli(['train', 'stage1', '--config', tinyConfig({ steps: 3, checkpointEvery: 1, description: 'extended' }), '--data', data, '--out', out, '--resume']);
    expect(longer.status, longer.stderr).toBe(0);
    expect(longer.stdout).toMatch(/finished at step 3 /);
    const none = cli(['train', 'stage1', '--config', config, '--data', data, '--out', join(work, 'fresh'), '--resume']);
    expect(none.stderr.trim()).toMatch(/^codiff: .*fresh: nothing to resume \(no checkpoint.safetensors\)$/);
  }, 120_000);

  it('an empty or all-unreadable data folder stops with one line before training; small and corrupt files are skipped and counted', () => {
    const empty = join(work, 'empty');
    mkdirSync(empty);
    const r1 = cli(['train', 'stage1', '--config', tinyConfig(), '--data', empty, '--out', join(work, 'e')]);
    expect(r1.status).toBe(1);
    expect(r1.stderr.trim()).toBe(`codiff: ${empty}: no usable photos (PNG/JPEG at least 40×40; 0 file(s) skipped)`);

    const bad = join(work, 'bad');
    mkdirSync(bad);
    writeFileSync(join(bad, 'text.png'), 'not an image');
    writeFileSync(join(bad, 'tiny.png'), flatPng(20, 20));
    const r2 = cli(['train', 'stage1', '--config', tinyConfig(), '--data', bad, '--out', join(work, 'b')]);
    expect(r2.stderr.trim().split('\n')).toEqual([
      expect.stringMatching(/^skipped .*text.png: .*not a PNG or JPEG/),
      expect.stringMatching(/^skipped .*tiny.png: 20×20 is smaller than 40×40$/),
      `codiff: ${bad}: no usable photos (PNG/JPEG at least 40×40; 2 file(s) skipped)`,
    ]);

    // A PNG whose header is fine but whose pixels are damaged fails in the data worker, mid-run: skipped, counted.
    const mixed = photoFolder('mixed', PHOTOS.slice(0, 2));
    const damaged = readFileSync(sharedPhotos('train', PHOTOS[2]));
    damaged.fill(0, 200, damaged.length - 20);
    writeFileSync(join(mixed, 'damaged.png'), damaged);
    const r3 = cli(['train', 'stage1', '--config', tinyConfig({ steps: 4 }), '--data', mixed, '--out', join(work, 'm')]);
    expect(r3.status, r3.stderr).toBe(0);
    expect(r3.stderr).toMatch(/^skipped .*damaged.png: /m);
    expect(r3.stdout).toMatch(/finished at step 4 .*; 1 file\(s\) skipped; run in/);
  }, 180_000);

  it('`train plot` draws the loss curves of a run as SVG with Vega-Lite', async () => {
    const out = join(work, 'whole');
    const r = cli(['train', 'plot', out]);
    expect(r.stdout.trim()).toBe(join(out, 'loss-curve.svg'));
    const svg = readFileSync(join(out, 'loss-curve.svg'), 'utf8');
    expect(svg.startsWith('<svg')).toBe(true);
    for (const series of ['train loss', 'train reconstruction', 'train qf', 'val qfMae', 'val reconstructionL1']) expect(svg).toContain(series);
    expect(cli(['train', 'plot', join(work, 'nowhere')]).stderr.trim()).toMatch(/^codiff: .*nowhere: no log.jsonl \(not a training run folder\)$/);
  });
});

describe('configurations', () => {
  it('the shipped configurations load; bad ones name the field', async () => {
    const official = await loadStage1Config('official');
    expect(official.model).toEqual({ channels: [64, 128, 256, 512], blocks: 4 });
    expect([official.patch, official.batchSize, official.optimizer.lr, official.steps]).toEqual([256, 128, 2e-5, 200000]);
    const lite = await loadStage1Config('lite');
    expect(lite.patch % 32).toBe(0);
    // lite-b64: the same CaVE and data at the sweep's batch and rate.
    const b64 = await loadStage1Config('lite-b64');
    expect([b64.model, b64.patch, b64.batchSize, b64.optimizer.lr, b64.qfLossWeight]).toEqual([lite.model, lite.patch, 64, 1e-3, lite.qfLossWeight]);
    // lite-b64-anneal: lite-b64's second half (--init from its step-4,601 CaVE) at the rates its schedule had left.
    const anneal = await loadStage1Config('lite-b64-anneal');
    expect([anneal.model, anneal.patch, anneal.batchSize, anneal.qfLossWeight]).toEqual([b64.model, b64.patch, b64.batchSize, b64.qfLossWeight]);
    expect(learningRateAt(anneal.optimizer, 1)).toBe(learningRateAt(b64.optimizer, 6001));
    await expect(loadStage1Config('huge')).rejects.toThrow(/no configuration 'huge' \(named ones: official, lite, lite-b64, lite-b64-anneal; or give a JSON file\)/);
    await expect(loadStage1Config(tinyConfig({ patch: 40 }))).rejects.toThrow(/patch must be a multiple of 32 \(got 40\)/);
    await expect(loadStage1Config(tinyConfig({ batchSize: 0 }))).rejects.toThrow(/batchSize must be a positive integer \(got 0\)/);
    expect(learningRateAt(official.optimizer, 200000)).toBe(2e-5);
    expect(learningRateAt(official.optimizer, 200001)).toBe(1e-5);
    // Stage 2's lite-anneal: codiff-lite's model, losses and data (--init from a trained folder) at a decaying rate.
    const [scratch, annealed] = [await loadStage2Config('lite'), await loadStage2Config('lite-anneal')];
    expect([annealed.model, annealed.patch, annealed.batchSize, annealed.weights, annealed.perceptual]).toEqual([scratch.model, scratch.patch, scratch.batchSize, scratch.weights, scratch.perceptual]);
    expect([1, 601, 1101].map((s) => learningRateAt(annealed.optimizer, s))).toEqual([2.5e-4, 1.25e-4, 6.25e-5]);
    await expect(loadStage2Config('huge')).rejects.toThrow(/named ones: official, tiny, lite, lite-anneal;/);
  });

  it('"extends" starts a configuration from a named or relative one: objects merged field by field, the rest replaced', async () => {
    const lite = await loadStage2Config('lite');
    const dir = join(work, 'extends');
    mkdirSync(join(dir, 'sub'), { recursive: true });
    const write = (name: string, config: object) => {
      writeFileSync(join(dir, name), JSON.stringify(config));
      return join(dir, name);
    };
    write('sub/gpu.json', { extends: 'lite-anneal', name: 'gpu', batchSize: 256, optimizer: { lr: 4e-4, milestones: [80] } });
    const gpu = await loadStage2Config(write('shorter.json', { extends: 'sub/gpu.json', steps: 150 }));
    expect([gpu.name, gpu.batchSize, gpu.steps, gpu.seed, gpu.model]).toEqual(['gpu', 256, 150, 2028, lite.model]);
    expect(gpu.optimizer).toEqual({ ...lite.optimizer, lr: 4e-4, milestones: [80] });
    write('b.json', { extends: 'a.json' });
    await expect(loadStage2Config(write('a.json', { extends: 'b.json' }))).rejects.toThrow(/a\.json extends itself \(.*a\.json → .*b\.json → .*a\.json\)/);
    await expect(loadStage2Config(write('c.json', { extends: 'nowhere.json' }))).rejects.toThrow(/no configuration 'nowhere\.json' \(extended by .*c\.json\)/);
    await expect(loadStage2Config(write('d.json', { extends: 3 }))).rejects.toThrow(/d\.json: extends must be a configuration name or a JSON file \(got 3\)/);
    // The merged configuration is validated as a whole.
    await expect(loadStage2Config(write('e.json', { extends: 'lite', batchSize: 0 }))).rejects.toThrow(/batchSize must be a positive integer \(got 0\)/);
  });

  it('scans recursively in a stable order, with EXIF-upright sizes', async () => {
    const { photos } = await scanPhotoFolder(sharedPhotos('test'), 40);
    expect(photos.map((p) => p.path.slice(sharedPhotos('test').length + 1)).slice(0, 3)).toEqual(['Classic5/baboon.png', 'Classic5/barbara.png', 'Classic5/boats.png']);
    expect(photos.length).toBe(28);
    await expect(scanPhotoFolder(join(work, 'missing'), 40)).rejects.toThrow(/missing: no such folder/);
  });
});

describe('officialInit (KAIR orthogonal, gain 0.2)', () => {
  beforeAll(() => useBackend('cpu'));

  it('orthogonal weights × 0.2, zero biases, BatchNorm weights in [0.1, 1); the same for the same seed', async () => {
    const [a, b] = [new CaVE({ channels: [4, 8, 12, 16], blocks: 1 }), new CaVE({ channels: [4, 8, 12, 16], blocks: 1 })];
    officialInit(a, 3);
    officialInit(b, 3);
    const [sa, sb] = [await a.stateDict(), await b.stateDict()];
    for (const [k, t] of sa) expect(sb.get(k)!.data, k).toEqual(t.data);
    // rows·rowsᵀ = 0.2²·I for a wide matrix (rows ≤ cols).
    const w = sa.get('m_down3.1.weight')!; // [16, 12, 4, 4]: 16 rows of 192
    const [rows, cols] = [w.shape[0], w.data.length / w.shape[0]];
    for (let i = 0; i < rows; i++) {
      for (let j = 0; j < rows; j++) {
        let dot = 0;
        for (let c = 0; c < cols; c++) dot += w.data[i * cols + c] * w.data[j * cols + c];
        expect(dot).toBeCloseTo(i === j ? 0.04 : 0, 5);
      }
    }
    expect([...sa.get('m_head.bias')!.data].every((v) => v === 0)).toBe(true);
    const gamma = [...sa.get('m_down1.0.res.1.weight')!.data];
    expect(gamma.every((v) => v >= 0.1 && v < 1)).toBe(true);
    expect(new Set(gamma).size).toBe(gamma.length);
    a.dispose();
    b.dispose();
  });
});

describe('the trainer in-process', () => {
  beforeAll(() => useBackend('wasm'));

  /** y = W·x on fixed data: no BatchNorm, so micro-batches average exactly. */
  class Tiny extends Module {
    readonly fc = this.child('fc', new Linear(4, 1));
  }
  const data = (index: number) => tf.tidy(() => ({ x: tf.randomNormal([4, 4], 0, 1, 'float32', index + 1), y: tf.randomNormal([4, 1], 0, 1, 'float32', index + 100) }));
  function task(model: Tiny, batchOf: (index: number) => { x: tf.Tensor; y: tf.Tensor }): TrainingTask<{ x: tf.Tensor; y: tf.Tensor }> {
    return {
      stage: 'test',
      model,
      batch: async (i) => batchOf(i),
      losses: (b) => {
        const total = tf.mean(tf.square(tf.sub(model.fc.forward(b.x), b.y))) as tf.Scalar;
        return { total };
      },
      disposeBatch: (b) => tf.dispose([b.x, b.y]),
    };
  }
  const weightsOf = async (m: Module) => [...(await m.stateDict()).values()].flatMap((t) => [...t.data]);
  const options = (out: string, steps: number, accumulate = 1) => ({ out: join(work, out), steps, accumulate, optimizer: { type: 'adamw' as const, lr: 0.01 }, checkpointEvery: 1000, validateEvery: 1000, config: { out } });

  it('keeps tf.memory().numTensors flat over 200 steps', async () => {
    const counts: number[] = [];
    const model = new Tiny();
    await train(task(model, data), { ...options('flat', 200), onProgress: (p) => counts.push(p.tensors) });
    expect(counts.length).toBe(200);
    expect(counts[199]).toBe(counts[9]);
    model.dispose();
  });

  it('gradient accumulation: two micro-batches of 4 equal one batch of 8', async () => {
    const [a, b] = [new Tiny(), new Tiny()];
    b.loadStateDict(await a.stateDict());
    const half = (i: number) => tf.tidy(() => { const d = data(Math.floor(i / 2)); const s = (i % 2) * 2; return { x: tf.slice(d.x, [s, 0], [2, -1]), y: tf.slice(d.y, [s, 0], [2, -1]) }; });
    await train(task(a, (i) => data(i)), options('whole-batch', 5));
    await train(task(b, half), options('micro-batches', 5, 2));
    const [wa, wb] = [await weightsOf(a), await weightsOf(b)];
    wa.forEach((v, i) => expect(wb[i]).toBeCloseTo(v, 6));
    a.dispose();
    b.dispose();
  });

  it('AdamW decays decoupled from the gradient, as torch.optim.AdamW; clipping scales by maxNorm/(‖g‖+1e-6)', async () => {
    const m = new Tiny();
    await m.fc.weight.assignValue(tf.tensor2d([[1], [2], [3], [4]]));
    await m.fc.bias!.assignValue(tf.tensor1d([0]));
    const opt = new AdamW(m.namedTrainableParameters(), { lr: 0.1, weightDecay: 0.5 });
    const g = new Map<string, tf.Tensor>([['fc.weight', tf.tensor2d([[1], [-1], [0], [2]])], ['fc.bias', tf.tensor1d([0])]]);
    const { grads, norm } = await clipGradNorm(g, 1);
    expect(norm).toBeCloseTo(Math.sqrt(6), 6);
    opt.step(grads);
    // torch: p·(1 − lr·wd) − lr·m̂/(√v̂ + eps), with m̂/√v̂ = sign(g) after one step (0 where g = 0).
    const w = await m.fc.weight.value.data();
    [1, 2, 3, 4].forEach((p, i) => expect(w[i]).toBeCloseTo(p * 0.95 - 0.1 * Math.sign([1, -1, 0, 2][i]), 5));
    opt.dispose();
    m.dispose();
  });

  it('writeCurves needs a run folder', async () => {
    await expect(writeCurves(join(work, 'none'))).rejects.toThrow(/no log.jsonl/);
  });

  it('trainStage1 names what is missing before building anything', async () => {
    const config = await loadStage1Config(tinyConfig());
    await expect(trainStage1({ config, data: join(work, 'nope'), out: join(work, 'x') })).rejects.toThrow(/nope: no such folder/);
  });
});
