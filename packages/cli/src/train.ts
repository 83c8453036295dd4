import type { TrainProgress } from '@codiff/train/node';
import { MultiBar, type SingleBar } from 'cli-progress';
import { startBackend } from './backend.js';

export interface TrainStage1Args {
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

/**
 * `codiff train stage1`: CaVE on a photo folder. SIGINT/SIGTERM finish the current step and write a checkpoint;
 * `--resume` continues from it bit for bit. wasm runs with one thread per core unless told otherwise.
 */
export async function trainStage1Command(args: TrainStage1Args) {
  const train = await import('@codiff/train/node');
  const { backend, threads } = await startBackend(args.backend, args.threads);
  const base = await train.loadStage1Config(args.config);
  const config = { ...base, ...(args.steps !== undefined && { steps: args.steps }), ...(args.seed !== undefined && { seed: args.seed }) };
  const stop = new AbortController();
  const onSignal = (signal: string) => {
    args.log(`${signal}: finishing this step and writing a checkpoint (resume with --resume)`);
    stop.abort();
  };
  const handlers = { SIGINT: () => onSignal('SIGINT'), SIGTERM: () => onSignal('SIGTERM') };
  for (const [s, h] of Object.entries(handlers)) process.on(s, h);
  // A MultiBar of one: it can print log lines above the bar.
  const bars = new MultiBar({
    format: 'stage1 [{bar}] {value}/{total} | loss {loss} | {rate} steps/s | data {data}% | ETA {eta_formatted}',
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
  const log = (line: string) => (bar ? bars.log(`${line}\n`) : args.log(line));
  try {
    const summary = await train.trainStage1({
      config,
      data: args.data,
      val: args.val,
      out: args.out,
      resume: args.resume,
      init: args.init,
      workers: args.workers,
      signal: stop.signal,
      onProgress,
      onLog: log,
    });
    return { ...summary, backend, threads };
  } finally {
    if (bar) bars.stop();
    for (const [s, h] of Object.entries(handlers)) process.off(s, h);
  }
}
