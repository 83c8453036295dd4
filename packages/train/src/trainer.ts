// Node-only: the resumable training loop both stages share.
import { appendFile, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { writeSafetensors, type HostTensor, type Module } from '@codiff/nn';
import { openSafetensorsFile } from '@codiff/nn/node';
import { writeFileAtomic } from '@codiff/image-io/node';
import { learningRateAt, type OptimizerConfig } from './config.js';
import { TrainError } from './errors.js';
import { Adam, AdamW, clipGradNorm, gradientsOf, type Gradients } from './optim.js';
import { lineChartSvg, type LinePoint } from './plot.js';

/** What a stage gives the trainer: its model, how to compute a step's losses, and how to validate. */
export interface TrainingTask<Batch> {
  readonly stage: string;
  /** Everything saved in checkpoints (trainable parameters and buffers). */
  readonly model: Module;
  /** The micro-batch of data index `index` (a pure function of the index: resuming replays the sequence). */
  batch(index: number): Promise<Batch>;
  /** The losses of one micro-batch; `total` is minimised, every entry is logged. Called under a gradient tape. */
  losses(batch: Batch): { total: tf.Scalar } & Record<string, tf.Scalar>;
  disposeBatch(batch: Batch): void;
  /** Validation metrics on held-out data (eval mode is the task's to set and undo). */
  validate?(): Promise<Record<string, number>>;
  /** Files a user wants from a run besides the checkpoint (e.g. the model alone), written at each checkpoint. */
  exportModel?(dir: string): Promise<void>;
  /**
   * A second model trained against the first (stage 2's discriminator): after the main gradients of each
   * micro-batch, its own loss on the same batch; stepped after the main model by an optimiser of the same settings.
   * Saved in checkpoints beside the main model. Its logged losses are prefixed `adversary_`.
   */
  readonly adversary?: {
    readonly model: Module;
    losses(batch: Batch): { total: tf.Scalar } & Record<string, tf.Scalar>;
  };
}

export interface TrainerOptions {
  /** Run folder: checkpoint, log, curves. */
  readonly out: string;
  readonly steps: number;
  readonly optimizer: OptimizerConfig;
  readonly accumulate?: number;
  readonly checkpointEvery: number;
  readonly validateEvery: number;
  /** Continue from `out`'s checkpoint (otherwise a folder that has one is refused, so no run is overwritten). */
  readonly resume?: boolean;
  /** Aborting finishes the current step, writes a checkpoint and returns. */
  readonly signal?: AbortSignal;
  /**
   * Stored in the checkpoint and checked on resume: a run continues only with its own configuration, except for the
   * fields that do not change what is trained (see `trainingIdentity`).
   */
  readonly config: unknown;
  readonly onProgress?: (p: TrainProgress) => void;
  readonly onLog?: (line: string) => void;
}

export interface TrainProgress {
  readonly step: number;
  readonly steps: number;
  readonly losses: Record<string, number>;
  readonly stepsPerSecond: number;
  readonly etaSeconds: number;
  /** Share of the step's wall time spent waiting for data. */
  readonly dataFraction: number;
  readonly tensors: number;
}

export interface TrainSummary {
  readonly step: number;
  readonly stopped: boolean;
  readonly seconds: number;
  readonly meanDataFraction: number;
}

export const CHECKPOINT_FILE = 'checkpoint.safetensors';
export const LOG_FILE = 'log.jsonl';
export const CURVE_FILE = 'loss-curve.svg';
const FORMAT = 'codiff-train-checkpoint/1';

/** The trainer options of a stage run: the schedule from its configuration, the rest from the run's options. */
export function stageTrainerOptions(
  config: { readonly steps: number; readonly optimizer: OptimizerConfig; readonly accumulate: number; readonly checkpointEvery: number; readonly validateEvery: number },
  run: Pick<TrainerOptions, 'out' | 'resume' | 'signal' | 'onProgress' | 'onLog'>,
): TrainerOptions {
  const { steps, optimizer, accumulate, checkpointEvery, validateEvery } = config;
  return { steps, optimizer, accumulate, checkpointEvery, validateEvery, config, out: run.out, resume: run.resume, signal: run.signal, onProgress: run.onProgress, onLog: run.onLog };
}

/**
 * The loop: micro-batches → gradients (accumulated) → clip → Adam/AdamW at the scheduled lr; a JSONL log line per
 * step, validation and an atomic checkpoint (model, optimiser moments, step) every N steps and when aborted.
 * Data is a function of the step, so `resume` continues bit-for-bit.
 */
export async function train<Batch>(task: TrainingTask<Batch>, options: TrainerOptions): Promise<TrainSummary> {
  await mkdir(options.out, { recursive: true });
  const checkpointPath = join(options.out, CHECKPOINT_FILE);
  const logPath = join(options.out, LOG_FILE);
  const Optimizer = options.optimizer.type === 'adamw' ? AdamW : Adam;
  const settings = { lr: options.optimizer.lr, betas: options.optimizer.betas, eps: options.optimizer.eps, weightDecay: options.optimizer.weightDecay };
  const optimizer = new Optimizer(task.model.namedTrainableParameters(), settings);
  const adversary = task.adversary && { ...task.adversary, optimizer: new Optimizer(task.adversary.model.namedTrainableParameters(), settings) };
  const accumulate = options.accumulate ?? 1;
  const started = performance.now();
  let step = 0;
  try {
    if (await exists(checkpointPath)) {
      if (!options.resume) throw new TrainError(`${options.out} already holds a run (${CHECKPOINT_FILE}); pass --resume to continue it, or choose another folder`);
      step = await restore(checkpointPath, [
        { model: task.model, optimizer, prefix: '' },
        ...(adversary ? [{ model: adversary.model, optimizer: adversary.optimizer, prefix: 'adversary_' }] : []),
      ], options.config);
      await truncateLog(logPath, step);
      options.onLog?.(`resumed ${options.out} at step ${step}`);
    } else if (options.resume) {
      throw new TrainError(`${options.out}: nothing to resume (no ${CHECKPOINT_FILE})`);
    } else {
      await writeFile(logPath, '');
    }
    task.model.train();
    adversary?.model.train();
    let dataSeconds = 0, stepSeconds = 0, recent: number[] = [];
    const firstStep = step;
    while (step < options.steps && !options.signal?.aborted) {
      const t0 = performance.now();
      let grads: Gradients | undefined, adversaryGrads: Gradients | undefined;
      const sums: Record<string, number> = {};
      let waited = 0;
      for (let a = 0; a < accumulate; a++) {
        const w0 = performance.now();
        const batch = await task.batch(step * accumulate + a);
        waited += performance.now() - w0;
        try {
          grads = accumulateInto(grads, await lossGradients(() => task.losses(batch), optimizer, sums, '', accumulate), accumulate);
          if (adversary) adversaryGrads = accumulateInto(adversaryGrads, await lossGradients(() => adversary.losses(batch), adversary.optimizer, sums, 'adversary_', accumulate), accumulate);
        } finally {
          task.disposeBatch(batch);
        }
      }
      const lr = learningRateAt(options.optimizer, step + 1);
      const norm = await optimiserStep(optimizer, grads!, lr, options.optimizer.clipGradNorm);
      if (adversary) await optimiserStep(adversary.optimizer, adversaryGrads!, lr, options.optimizer.clipGradNorm);
      step += 1;

      const seconds = (performance.now() - t0) / 1000;
      dataSeconds += waited / 1000;
      stepSeconds += seconds;
      recent = [...recent.slice(-19), seconds];
      const record = { type: 'train', step, ...sums, lr, ...(norm !== undefined && { gradNorm: norm }), seconds, dataSeconds: waited / 1000 };
      await appendFile(logPath, JSON.stringify(record) + '\n');
      const perStep = recent.reduce((a, b) => a + b, 0) / recent.length;
      options.onProgress?.({
        step,
        steps: options.steps,
        losses: sums,
        stepsPerSecond: 1 / perStep,
        etaSeconds: (options.steps - step) * perStep,
        dataFraction: waited / 1000 / seconds,
        tensors: tf.memory().numTensors,
      });
      if (task.validate && (step % options.validateEvery === 0 || step === options.steps)) {
        const metrics = await task.validate();
        task.model.train();
        await appendFile(logPath, JSON.stringify({ type: 'val', step, ...metrics }) + '\n');
        options.onLog?.(`step ${step} validation: ${Object.entries(metrics).map(([k, v]) => `${k} ${v.toFixed(4)}`).join(', ')}`);
      }
      if (step % options.checkpointEvery === 0 || step === options.steps || options.signal?.aborted) {
        await saveCheckpoint(checkpointPath, task.stage, [
          { model: task.model, optimizer, prefix: '' },
          ...(adversary ? [{ model: adversary.model, optimizer: adversary.optimizer, prefix: 'adversary_' }] : []),
        ], step, options.config);
        await task.exportModel?.(options.out);
      }
    }
    if (step > firstStep) await writeCurves(options.out);
    return { step, stopped: step < options.steps, seconds: (performance.now() - started) / 1000, meanDataFraction: stepSeconds > 0 ? dataSeconds / stepSeconds : 0 };
  } finally {
    optimizer.dispose();
    adversary?.optimizer.dispose();
  }
}

/** One micro-batch's gradients; its loss values (÷ accumulate) are added to `sums` under `prefix`. */
async function lossGradients(
  losses: () => { total: tf.Scalar } & Record<string, tf.Scalar>,
  optimizer: Adam,
  sums: Record<string, number>,
  prefix: string,
  accumulate: number,
): Promise<Gradients> {
  const values: Record<string, tf.Scalar> = {};
  const { value, grads } = gradientsOf(() => {
    const l = losses();
    for (const [k, v] of Object.entries(l)) if (k !== 'total') values[k] = tf.keep(v);
    return l.total;
  }, optimizer);
  values.loss = value;
  for (const [k, v] of Object.entries(values)) sums[prefix + k] = (sums[prefix + k] ?? 0) + (await v.data())[0] / accumulate;
  tf.dispose(Object.values(values));
  return grads;
}

/** Clip (if configured) and apply one update at `lr`; returns the gradient norm before clipping, when clipped. */
async function optimiserStep(optimizer: Adam, grads: Gradients, lr: number, clip: number | null | undefined): Promise<number | undefined> {
  let norm: number | undefined;
  if (clip != null) ({ grads, norm } = await clipGradNorm(grads, clip));
  optimizer.lr = lr;
  optimizer.step(grads);
  tf.dispose([...grads.values()]);
  return norm;
}

function accumulateInto(sum: Gradients | undefined, g: Gradients, parts: number): Gradients {
  if (parts === 1) return g;
  const out: Gradients = new Map();
  for (const [k, v] of g) {
    const scaled = tf.tidy(() => (sum ? tf.add(sum.get(k)!, tf.div(v, parts)) : tf.div(v, parts)));
    out.set(k, scaled);
    v.dispose();
    sum?.get(k)!.dispose();
  }
  return out;
}

/** A model and its optimiser, saved under `<prefix>model.` and `<prefix>optimizer.`. */
interface Trained {
  readonly model: Module;
  readonly optimizer: Adam;
  readonly prefix: string;
}

async function saveCheckpoint(path: string, stage: string, parts: readonly Trained[], step: number, config: unknown): Promise<void> {
  const tensors: Record<string, HostTensor & { dtype: 'F32' }> = {};
  const steps: Record<string, string> = {};
  for (const { model, optimizer, prefix } of parts) {
    for (const [k, t] of await model.stateDict()) tensors[`${prefix}model.${k}`] = { ...t, dtype: 'F32' };
    for (const [k, t] of await optimizer.stateDict()) tensors[`${prefix}optimizer.${k}`] = { ...t, dtype: 'F32' };
    steps[`${prefix}optimizer_steps`] = String(optimizer.stepCount);
  }
  const metadata = { format: FORMAT, stage, step: String(step), ...steps, config: JSON.stringify(config) };
  await writeFileAtomic(path, writeSafetensors(tensors, metadata));
}

/**
 * What must match for a run to resume: the configuration without its description, its step count (a run may be
 * extended), how often it checkpoints and validates, and what validation measures — none of which changes a step's
 * arithmetic.
 */
function trainingIdentity(config: unknown): string {
  if (typeof config !== 'object' || config === null) return JSON.stringify(config);
  const { description: _d, steps: _s, checkpointEvery: _c, validateEvery: _v, validation: _m, ...identity } = config as Record<string, unknown>;
  return JSON.stringify(identity);
}

async function restore(path: string, parts: readonly Trained[], config: unknown): Promise<number> {
  const file = await openSafetensorsFile(path);
  try {
    // The header decides before any tensor is read.
    const metadata = file.metadata;
    if (metadata.format !== FORMAT) throw new TrainError(`${path}: not a codiff training checkpoint`);
    if (trainingIdentity(JSON.parse(metadata.config ?? 'null')) !== trainingIdentity(config)) {
      throw new TrainError(`${path} was written with another configuration; resume with the same one (its configuration is in the checkpoint metadata)`);
    }
    const all = await file.readAll();
    const pick = (prefix: string) => new Map([...all].filter(([k]) => k.startsWith(prefix)).map(([k, t]) => [k.slice(prefix.length), t]));
    for (const { model, optimizer, prefix } of parts) {
      model.loadStateDict(pick(`${prefix}model.`));
      optimizer.loadStateDict(pick(`${prefix}optimizer.`), Number(metadata[`${prefix}optimizer_steps`]));
    }
    return Number(metadata.step);
  } finally {
    await file.close();
  }
}

/** The metadata of a training checkpoint (step, stage, configuration). */
export async function readCheckpointMetadata(path: string): Promise<Record<string, string>> {
  const file = await openSafetensorsFile(path);
  try {
    return file.metadata;
  } finally {
    await file.close();
  }
}

type LogRecord = { type: string; step: number } & Record<string, number | string>;

/** The records of a run's log, without a last line a kill cut short; undefined when there is no log. */
async function readLog(path: string): Promise<LogRecord[] | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    return undefined;
  }
  const records: LogRecord[] = [];
  for (const line of text.split('\n')) {
    try {
      if (line) records.push(JSON.parse(line));
    } catch {
      // a line cut by a kill
    }
  }
  return records;
}

/** Keep the log records up to `step` (a resumed run rewrites what came after its checkpoint). */
async function truncateLog(path: string, step: number): Promise<void> {
  const kept = ((await readLog(path)) ?? []).filter((r) => r.step <= step);
  await writeFileAtomic(path, new TextEncoder().encode(kept.map((r) => JSON.stringify(r) + '\n').join('')));
}

/** Draw `loss-curve.svg` from a run folder's log: training losses (smoothed over 20 steps) and validation metrics. */
export async function writeCurves(runDir: string): Promise<string> {
  const records = await readLog(join(runDir, LOG_FILE));
  if (!records) throw new TrainError(`${runDir}: no ${LOG_FILE} (not a training run folder)`);
  const points: LinePoint[] = [];
  const window = new Map<string, number[]>();
  for (const r of records) {
    for (const [k, v] of Object.entries(r)) {
      if (typeof v !== 'number' || ['step', 'seconds', 'dataSeconds', 'lr'].includes(k)) continue;
      if (r.type === 'val') points.push({ step: r.step, value: v, series: `val ${k}` });
      else {
        const w = [...(window.get(k) ?? []).slice(-19), v];
        window.set(k, w);
        points.push({ step: r.step, value: w.reduce((a, b) => a + b, 0) / w.length, series: `train ${k}` });
      }
    }
  }
  const path = join(runDir, CURVE_FILE);
  await writeFileAtomic(path, new TextEncoder().encode(await lineChartSvg(points, `training run ${runDir}`)));
  return path;
}

const exists = (path: string) => stat(path).then(() => true, () => false);
