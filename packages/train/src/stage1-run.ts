// Node-only: stage 1 (CaVE) as a training task over photo folders.
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { CaVE } from '@codiff/cave';
import { saveCave } from '@codiff/cave/node';
import { readStateDictFile } from '@codiff/nn/node';
import { validateStage1Config, type Stage1Config } from './config.js';
import { readConfigFile } from './config-files.js';
import { TrainError } from './errors.js';
import { centrePairs, PairLoader, scanPhotoFolder, type SkippedFile } from './data.js';
import { officialInit } from './init.js';
import type { PairBatch } from './samples.js';
import { stage1Losses, type Stage1Batch } from './stage1.js';
import { stageTrainerOptions, train, type TrainProgress, type TrainSummary, type TrainingTask } from './trainer.js';

/** The configurations shipped in `configs/` (stage1-<name>.json). */
export const STAGE1_CONFIG_NAMES = ['official', 'lite', 'lite-b64', 'lite-b64-anneal'] as const;

/** A named configuration (STAGE1_CONFIG_NAMES) or a path to a JSON file of the same shape. */
export async function loadStage1Config(nameOrPath: string): Promise<Stage1Config> {
  return readConfigFile('stage1', STAGE1_CONFIG_NAMES, nameOrPath, validateStage1Config);
}

export interface Stage1RunOptions {
  readonly config: Stage1Config;
  /** Folder of training photos (PNG/JPEG, searched recursively). */
  readonly data: string;
  /** Folder of validation photos (optional). */
  readonly val?: string;
  readonly out: string;
  readonly resume?: boolean;
  /** Start a new run from these CaVE weights (e.g. a previous run's cave.safetensors, or the official cave.pth). */
  readonly init?: string;
  readonly workers?: number;
  readonly signal?: AbortSignal;
  readonly onProgress?: (p: TrainProgress) => void;
  /** Messages for the user: skipped files, validation results, resumption. */
  readonly onLog?: (line: string) => void;
}

/** The validation QFs: the training range and beyond it. */
export const VALIDATION_QUALITIES = [10, 30, 50, 70, 90] as const;

/**
 * Train CaVE (stage 1): L1(reconstruction, HQ) + 1e-3·L1(qf, (100 − QF)/100) with Adam on the official data
 * pipeline. Stops with one clear TrainError before training when the data folder holds nothing usable.
 */
export async function trainStage1(options: Stage1RunOptions): Promise<TrainSummary & { skipped: number }> {
  const { config } = options;
  const minSize = config.patch + 8;
  const { photos, skipped } = await scanPhotoFolder(options.data, minSize);
  const report = (f: SkippedFile) => options.onLog?.(`skipped ${f.path}: ${f.reason}`);
  skipped.forEach(report);
  if (photos.length === 0) {
    throw new TrainError(`${options.data}: no usable photos (PNG/JPEG at least ${minSize}×${minSize}; ${skipped.length} file(s) skipped)`);
  }
  const validation = options.val ? await centrePairs(options.val, config.patch, VALIDATION_QUALITIES, options.onLog) : undefined;
  if (options.init && options.resume) throw new TrainError('--init starts a new run; --resume continues one: give one of them');
  // The QF head's training patch goes into the saved configuration: estimateQuality averages over tiles of it.
  const cave = new CaVE({ ...config.model, qualityPatch: config.patch });
  officialInit(cave, config.seed);
  if (options.init) {
    try {
      cave.loadStateDict(await readStateDictFile(options.init));
    } catch (e) {
      cave.dispose();
      throw new TrainError(`--init ${options.init}: ${(e as Error).message}`);
    }
  }
  // Worker threads keep the process alive: start them only once nothing else can fail before the finally below.
  const loader = new PairLoader({ photos, patch: config.patch, batchSize: config.batchSize, seed: config.seed, workers: options.workers, onSkip: (f) => {
    skipped.push(f);
    report(f);
  } });
  const p = config.patch;
  const task: TrainingTask<Stage1Batch> = {
    stage: 'stage1',
    model: cave,
    async batch(index) {
      const b = await loader.batch(index);
      return tf.tidy(() => ({
        lq: tf.tensor4d(b.lq, [b.size, p, p, 3]),
        hq: tf.tensor4d(b.hq, [b.size, p, p, 3]),
        target: tf.tensor1d(b.quality.map((q) => (100 - q) / 100)),
      }));
    },
    losses: (batch) => {
      const l = stage1Losses(cave, batch, config.qfLossWeight);
      return { total: l.total, reconstruction: l.reconstruction, qf: l.quality };
    },
    disposeBatch: (batch) => tf.dispose([batch.lq, batch.hq, batch.target]),
    validate: validation && (() => validateStage1(cave, validation, config.batchSize)),
    exportModel: (dir) => saveCave(cave, join(dir, 'cave.safetensors'), { stage: 'stage1', name: config.name }),
  };
  try {
    const summary = await train(task, stageTrainerOptions(config, options));
    return { ...summary, skipped: skipped.length };
  } finally {
    await loader.close();
    cave.dispose();
  }
}

/** Eval-mode reconstruction L1 and the QF estimate's mean absolute error (in QF units) on the validation set. */
async function validateStage1(cave: CaVE, v: PairBatch, batchSize: number): Promise<Record<string, number>> {
  cave.eval();
  const p = v.patch, size = p * p * 3, n = v.quality.length;
  let l1 = 0, qfError = 0;
  for (let s = 0; s < n; s += batchSize) {
    const b = Math.min(batchSize, n - s);
    const [recon, qf] = tf.tidy(() => {
      const out = cave.forward(tf.tensor4d(v.lq.subarray(s * size, (s + b) * size), [b, p, p, 3]));
      const hq = tf.tensor4d(v.hq.subarray(s * size, (s + b) * size), [b, p, p, 3]);
      return [tf.sum(tf.abs(tf.sub(out.reconstruction, hq))), tf.reshape(out.qf, [-1])];
    });
    l1 += (await recon.data())[0] / size;
    const predicted = await qf.data();
    for (let i = 0; i < b; i++) qfError += Math.abs(100 * (1 - predicted[i]) - v.quality[s + i]);
    tf.dispose([recon, qf]);
  }
  return { reconstructionL1: l1 / n, qfMae: qfError / n };
}
