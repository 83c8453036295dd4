import type { TrainProgress } from '@codiff/train/node';
import { join } from 'node:path';
import { MultiBar, type SingleBar } from 'cli-progress';
import { isWasmOutOfMemory, startBackend } from './backend.js';
import { CliError } from './io.js';

/** What both stages take from the command line. */
export interface TrainArgs {
  config: string;
  data: string;
  val?: string;
  out: string;
  resume: boolean;
  init?: string;
  /** Overrides of the configuration file. */
  steps?: number;
  seed?: number;
  workers?: number;
  backend?: string;
  threads?: number;
  progress: boolean;
  log: (line: string) => void;
}

export type TrainStage1Args = TrainArgs;

export interface TrainStage2Args extends TrainArgs {
  /** Stable Diffusion 2.1-base diffusers folder, CaVE weights, the perceptual network's weights folder. */
  sd?: string;
  cave: string;
  perceptualWeights: string;
  /** Override: let the adversarial gradient reach the generator. */
  ganGradient?: boolean;
}

interface Hooks {
  signal: AbortSignal;
  onProgress: (p: TrainProgress) => void;
  onLog: (line: string) => void;
}

/**
 * Stopping a run from the terminal. The first SIGINT/SIGTERM aborts `signal`: the trainer finishes its step and
 * writes a checkpoint. A second one exits at once (status 130), for a user who will not wait for a long step;
 * nothing is lost but that step and those since the last checkpoint, which is written atomically.
 */
export function stopOnSignals(
  log: (line: string) => void,
  exit: (code: number) => void = (code) => process.exit(code),
  source: Pick<NodeJS.EventEmitter, 'on' | 'off'> = process,
) {
  const stop = new AbortController();
  const onSignal = (signal: string) => {
    if (!stop.signal.aborted) {
      log(`${signal}: finishing this step and writing a checkpoint (resume with --resume; ${signal} again stops at once)`);
      stop.abort();
    } else {
      log(`${signal} again: stopping now, without this step; --resume continues from the last checkpoint`);
      exit(130);
    }
  };
  const handlers = { SIGINT: () => onSignal('SIGINT'), SIGTERM: () => onSignal('SIGTERM') };
  for (const [s, h] of Object.entries(handlers)) source.on(s, h);
  return {
    signal: stop.signal,
    release: () => {
      for (const [s, h] of Object.entries(handlers)) source.off(s, h);
    },
  };
}

/**
 * A training run in the terminal: stopped by signals (`stopOnSignals`; `--resume` continues bit for bit); a progress
 * bar with step, loss, steps/s, data share and ETA, log lines above it.
 */
async function inTerminal<S>(stage: string, args: TrainArgs, run: (hooks: Hooks) => Promise<S>): Promise<S> {
  const stop = stopOnSignals(args.log);
  // A MultiBar of one: it can print log lines above the bar.
  const bars = new MultiBar({
    format: `${stage} [{bar}] {value}/{total} | loss {loss} | {rate} steps/s | data {data}% | ETA {eta_formatted}`,
    stream: process.stderr,
    hideCursor: true,
    etaBuffer: 20,
  });
  let bar: SingleBar | undefined;
  const onProgress = (p: TrainProgress) => {
    if (!args.progress) return;
    const values = { loss: p.losses.loss.toFixed(4), rate: p.stepsPerSecond.toFixed(2), data: (100 * p.dataFraction).toFixed(1) };
    if (!bar) bar = bars.create(p.steps, p.step, values);
    else bar.update(p.step, values);
  };
  try {
    return await run({ signal: stop.signal, onProgress, onLog: (line) => (bar ? bars.log(`${line}\n`) : args.log(line)) });
  } catch (e) {
    if (isWasmOutOfMemory(e)) {
      throw new CliError(`the wasm backend ran out of memory in a ${stage} step (its heap is 4 GiB): give the configuration a smaller patch or batchSize (accumulate keeps the effective batch), or use --backend webgpu`);
    }
    throw e;
  } finally {
    if (bar) bars.stop();
    stop.release();
  }
}

/** The configuration with the command line's overrides. */
function overridden<C extends { steps: number; seed: number }>(config: C, args: TrainArgs): C {
  return { ...config, ...(args.steps !== undefined && { steps: args.steps }), ...(args.seed !== undefined && { seed: args.seed }) };
}

/** `codiff train stage1`: CaVE on a photo folder. wasm runs with one thread per core unless told otherwise. */
export async function trainStage1Command(args: TrainStage1Args) {
  const train = await import('@codiff/train/node');
  const { backend, threads } = await startBackend(args.backend, args.threads);
  const config = overridden(await train.loadStage1Config(args.config), args);
  const { data, val, out, resume, init, workers } = args;
  const summary = await inTerminal('stage1', args, (hooks) => train.trainStage1({ config, data, val, out, resume, init, workers, ...hooks }));
  return { ...summary, backend, threads };
}

/** `codiff train stage2`: the CODiff generator (and its discriminator) on a photo folder. */
export async function trainStage2Command(args: TrainStage2Args) {
  const train = await import('@codiff/train/node');
  const { backend, threads } = await startBackend(args.backend, args.threads);
  const base = overridden(await train.loadStage2Config(args.config), args);
  const config = args.ganGradient ? { ...base, ganGradient: true } : base;
  const { data, val, out, resume, init, workers, sd, cave, perceptualWeights } = args;
  const summary = await inTerminal('stage2', args, (hooks) => train.trainStage2({ config, data, val, out, resume, init, workers, sd, cave, perceptualWeights, ...hooks }));
  return { ...summary, backend, threads, lite: config.model !== undefined };
}

export interface PostFilterArgs {
  /** Model folder (default: codiff-lite as shipped). */
  model?: string;
  data: string;
  every: number;
  qualities?: number[];
  stages?: number;
  /** Default: `postfilter.safetensors` in the model folder, where `codiff restore` finds it. */
  out?: string;
  backend?: string;
  threads?: number;
  log: (line: string) => void;
}

/**
 * `codiff train postfilter`: fit a model folder's luma post-filter to its restores of a photo folder, in one pass.
 * The file is written atomically at the end: Ctrl-C before then leaves any earlier filter as it was.
 */
export async function fitPostFilterCommand(args: PostFilterArgs) {
  const [train, pipeline, { writeFileAtomic }] = await Promise.all([import('@codiff/train/node'), import('@codiff/pipeline'), import('@codiff/image-io/node')]);
  const { backend, threads } = await startBackend(args.backend, args.threads);
  const dir = args.model ?? (await import('@codiff/model-lite/node')).liteModelDir();
  const out = args.out ?? join(dir, pipeline.POST_FILTER_FILE);
  const { loadCodiffFolder } = await import('@codiff/pipeline/node');
  const g = await loadCodiffFolder(dir);
  const started = Date.now();
  try {
    const filter = await train.fitPostFilter(g, {
      data: args.data,
      every: args.every,
      qualities: args.qualities,
      stages: args.stages,
      onLog: args.log,
      onProgress: (done, total) => {
        if (done % 10 === 0 || done === total) args.log(`${done}/${total} photos restored and accumulated (${((Date.now() - started) / 1000).toFixed(0)} s)`);
      },
    });
    await writeFileAtomic(out, filter.toSafetensors());
    const fitted = Number(filter.provenance.classes_fitted);
    if (fitted < pipeline.POST_FILTER_CLASSES) args.log(`${pipeline.POST_FILTER_CLASSES - fitted} of ${pipeline.POST_FILTER_CLASSES} classes (in the stage with the fewest) had too few pixels to fit and correct nothing: more photos fit more of them`);
    return { out, backend, threads, seconds: (Date.now() - started) / 1000, photos: Number(filter.provenance.photos), samples: Number(filter.provenance.samples) };
  } finally {
    g.dispose();
  }
}
