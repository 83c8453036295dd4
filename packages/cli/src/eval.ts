import { resolve } from 'node:path';
import type { Evaluation, Progress, Restorer } from '@codiff/eval/node';
import type { Pixels } from '@codiff/pipeline';
import { SingleBar } from 'cli-progress';
import { startBackend } from './backend.js';
import { CliError } from './io.js';
import { checkedColorFix, checkPostFilter } from './restore.js';

export interface EvalArgs {
  data: string[];
  qualities: number[];
  protocol: 'codiff' | 'full';
  /** The method under test: a command with {in} and {out}, or a CODiff model folder (or 'lite') run in-process. */
  restorer?: string;
  model?: string;
  /** Colour fix of the model (see `codiff restore --color`). */
  color?: string;
  /** Block-edge smoothing of the model (see `codiff restore --deblock`); undefined: the model's default. */
  deblock?: boolean;
  /** The model folder's luma post-filter (see `codiff restore --post-filter`). */
  postFilter?: boolean;
  restorerName: string;
  /** 'jpegqs', 'dncnn3', or 'name=command {in} {out}'. */
  compare: string[];
  /** Folder laid out as ../shared/weights (SqueezeNet + LPIPS heads, DnCNN-3). */
  weights?: string;
  /** Folder with vgg16 / DISTS / LPIPS-vgg safetensors. */
  vgg?: string;
  out?: string;
  backend?: string;
  threads?: number;
  maxPixels: number;
  progress: boolean;
}

export interface EvalResult {
  evaluation: Evaluation;
  written: string[];
  seconds: number;
}

/** Run an evaluation (see `@codiff/eval`); TF.js is loaded only when LPIPS or DnCNN-3 need it. */
export async function evalCommand(args: EvalArgs): Promise<EvalResult> {
  const ev = await import('@codiff/eval/node');
  const needsTf = !!args.weights || !!args.vgg || !!args.model || args.compare.includes('dncnn3');
  const backend = needsTf ? (await startBackend(args.backend, args.threads)).backend : undefined;
  const compare: Restorer[] = [];
  for (const spec of args.compare) {
    if (spec === 'jpegqs') compare.push(ev.jpegqs());
    else if (spec === 'dncnn3') {
      if (!args.weights) throw new CliError('--compare dncnn3 needs --weights <folder> holding dncnn3/dncnn3.safetensors');
      compare.push(ev.dncnn3(await ev.loadDnCNN(resolve(args.weights, 'dncnn3/dncnn3.safetensors'))));
    } else {
      const at = spec.indexOf('=');
      if (at < 1) throw new CliError(`--compare takes jpegqs, dncnn3 or name=command {in} {out}, not '${spec}'`);
      compare.push(ev.commandRestorer(spec.slice(0, at), spec.slice(at + 1)));
    }
  }
  const model = args.model ? await modelRestorer(args.model, args.restorerName, { color: args.color ?? 'adain', deblock: args.deblock, postFilter: args.postFilter }, backend === 'wasm') : undefined;
  const restorer = args.restorer ? ev.commandRestorer(args.restorerName, args.restorer) : model;
  const sets = (await Promise.all(args.data.map((d) => ev.findImageSets(d)))).flat();
  const models = await ev.loadPerceptualModels(args.weights, args.vgg);
  const bar = new SingleBar({
    format: 'codiff eval [{bar}] {value}/{total} image×QF | {set}/{image} QF {qf} | ETA {eta_formatted}',
    stream: process.stderr,
    hideCursor: true,
    clearOnComplete: true,
  });
  const start = performance.now();
  if (args.progress) bar.start(sets.reduce((n, s) => n + s.files.length, 0) * args.qualities.length, 0, { set: '', image: '', qf: '' });
  let evaluation: Evaluation;
  try {
    evaluation = await ev.evaluate(
      { sets, qualities: args.qualities, protocol: args.protocol, restorer, compare, models, maxPixels: args.maxPixels },
      (p: Progress) => {
        if (args.progress) bar.update(p.done, { set: p.set, image: p.image, qf: p.qf });
      },
    );
  } finally {
    if (args.progress) bar.stop();
    model?.dispose();
  }
  const written = args.out ? await ev.writeReport(args.out, evaluation, args.protocol) : [];
  return { evaluation, written, seconds: (performance.now() - start) / 1000 };
}

/** A CODiff model folder, or 'lite' (the bundled codiff-lite), as an in-process method under test. */
async function modelRestorer(folder: string, name: string, options: { color: string; deblock?: boolean; postFilter?: boolean }, wasm: boolean): Promise<Restorer & { dispose(): void }> {
  const [pipeline, pipelineNode] = await Promise.all([import('@codiff/pipeline'), import('@codiff/pipeline/node')]);
  const fix = await checkedColorFix(options.color);
  const dir = folder === 'lite' ? (await import('@codiff/model-lite/node')).liteModelDir() : folder;
  // SD 2.1's UNet does not fit wasm's 4 GiB heap: its weights stay on the host and are uploaded per layer.
  const g = await pipelineNode.loadCodiffFolder(dir, { host: wasm ? 'sd' : false });
  await g.mergeAdapters();
  await checkPostFilter(g, dir, options);
  return {
    name,
    // A decoded JPEG is grey or RGB; restoreImage names anything else.
    restore: (_jpeg, decoded) => pipeline.restoreImage(g, decoded as Pixels, { color: fix, deblock: options.deblock, postFilter: options.postFilter }),
    dispose: () => g.dispose(),
  };
}
