import { readdir, stat } from 'node:fs/promises';
import { basename, extname, join } from 'node:path';
import { encodePng } from '@codiff/image-io';
import { readImageFile, writeFileAtomic } from '@codiff/image-io/node';
import type { CodiffGenerator, ColorFix, GridPhase } from '@codiff/pipeline';
import { MultiBar, Presets } from 'cli-progress';
import { isWasmOutOfMemory, startBackend } from './backend.js';
import { CliError } from './io.js';

export interface RestoreArgs {
  readonly inputs: readonly string[];
  readonly output: string;
  readonly model?: string;
  readonly tile?: number;
  readonly overlap?: number;
  /** Checked against the pipeline's colour fixes (the CLI passes the user's word). */
  readonly color: string;
  /** Block-edge smoothing (RestoreOptions.deblock); undefined: the model's default. */
  readonly deblock?: boolean;
  /** The model folder's luma post-filter after the smoothing (RestoreOptions.postFilter). */
  readonly postFilter?: boolean;
  /** Where the JPEG's 8×8 grid lies, for the smoothing (RestoreOptions.grid); undefined: aligned, as in a JPEG file. */
  readonly grid?: GridPhase;
  /** Tiled-VAE tile sizes (encoder px, decoder latent px). */
  readonly vaeTile?: [number, number];
  readonly backend?: string;
  readonly threads?: number;
  readonly skipExisting: boolean;
  readonly maxPixels: number;
  readonly progress: boolean;
  /** One line per file done, skipped or failed. */
  readonly log: (line: string) => void;
}

export interface RestoreSummary {
  readonly restored: number;
  readonly skipped: number;
  readonly failed: { file: string; reason: string }[];
}

const IMAGE = /\.(jpe?g|png)$/i;

/** What a user can do when the wasm backend's heap is exhausted during a restore. */
export const WASM_OUT_OF_MEMORY = 'the wasm backend ran out of memory (its heap is 4 GiB): use smaller tiles (e.g. --vae-tile 512,64 --tile 64) or --backend webgpu';

/** The user's `--color` word as one of the pipeline's colour fixes, or a one-line error naming them. */
export async function checkedColorFix(color: string): Promise<ColorFix> {
  const fixes: readonly string[] = (await import('@codiff/pipeline')).COLOR_FIXES;
  if (!fixes.includes(color)) throw new CliError(`--color must be ${fixes.slice(0, -1).join(', ')} or ${fixes.at(-1)} (got ${color})`);
  return color as ColorFix;
}

/** Each input file and where its PNG goes: `-o file.png` for one file, else `-o` is a folder mirroring the inputs. */
export async function restoreJobs(inputs: readonly string[], output: string): Promise<{ input: string; output: string }[]> {
  const jobs: { input: string; output: string }[] = [];
  for (const input of inputs) {
    const s = await stat(input).catch(() => {
      throw new CliError(`${input}: no such file or folder`);
    });
    if (s.isDirectory()) {
      const files = (await readdir(input, { recursive: true })).filter((f) => IMAGE.test(f)).sort();
      if (files.length === 0) throw new CliError(`${input}: no JPEG or PNG files in this folder`);
      for (const f of files) jobs.push({ input: join(input, f), output: join(output, f.slice(0, -extname(f).length) + '.png') });
    } else {
      jobs.push({ input, output: join(output, basename(input, extname(input)) + '.png') });
    }
  }
  if (jobs.length === 1 && !(await stat(inputs[0])).isDirectory() && /\.png$/i.test(output)) return [{ input: jobs[0].input, output }];
  const seen = new Map<string, string>();
  for (const j of jobs) {
    const other = seen.get(j.output);
    if (other) throw new CliError(`${other} and ${j.input} would both be written to ${j.output}; restore them into different folders`);
    seen.set(j.output, j.input);
  }
  return jobs;
}

const POST_FILTER_WITHOUT_SMOOTHING = '--post-filter runs after the block-edge smoothing, which is off here: add --deblock';

/**
 * Before any image: a `--post-filter` that would fail on each (the smoothing off, or a folder without the filter) is
 * one error, and the generator is freed.
 */
export async function checkPostFilter(generator: CodiffGenerator, dir: string, args: { postFilter?: boolean; deblock?: boolean }): Promise<void> {
  if (!args.postFilter) return;
  const { deblocksByDefault, POST_FILTER_FILE } = await import('@codiff/pipeline');
  const problem =
    args.deblock === false || (args.deblock === undefined && !deblocksByDefault(generator))
      ? POST_FILTER_WITHOUT_SMOOTHING
      : !generator.postFilter
        ? `--post-filter: ${dir} has no ${POST_FILTER_FILE} (codiff train postfilter fits one)`
        : undefined;
  if (problem) {
    generator.dispose();
    throw new CliError(problem);
  }
}

/**
 * `codiff restore`: every input JPEG/PNG (folders searched recursively) restored with a CODiff model into PNGs. A
 * file that fails is reported and the run goes on; outputs are written atomically and never onto an input.
 */
export async function restoreCommand(args: RestoreArgs): Promise<RestoreSummary> {
  const jobs = await restoreJobs(args.inputs, args.output);
  const inputs = jobs.map((j) => j.input);
  const [pipeline, pipelineNode] = await Promise.all([import('@codiff/pipeline'), import('@codiff/pipeline/node')]);
  const color = await checkedColorFix(args.color);
  const gridUnused = '--grid places the block-edge smoothing, which is off here: add --deblock';
  if (args.grid && args.deblock === false) throw new CliError(gridUnused);
  if (args.postFilter && args.deblock === false) throw new CliError(POST_FILTER_WITHOUT_SMOOTHING);
  // Without --model: codiff-lite, the small model that ships with the CLI (@codiff/model-lite).
  const dir = args.model ?? (await import('@codiff/model-lite/node')).liteModelDir();
  const { backend } = await startBackend(args.backend, args.threads);
  // SD 2.1's UNet does not fit wasm's 4 GiB heap: its weights stay on the host and are uploaded per layer.
  const generator = await pipelineNode.loadCodiffFolder(dir, { host: backend === 'wasm' ? 'sd' : false });
  await generator.mergeAdapters();
  if (args.grid && args.deblock === undefined && !pipeline.deblocksByDefault(generator)) {
    generator.dispose();
    throw new CliError(gridUnused);
  }
  await checkPostFilter(generator, dir, args);
  const bars = args.progress ? new MultiBar({ stream: process.stderr, clearOnComplete: true, hideCursor: true, format: '{name} [{bar}] {value}/{total} {what}' }, Presets.shades_classic) : undefined;
  const folderBar = bars && jobs.length > 1 ? bars.create(jobs.length, 0, { name: 'images', what: '' }) : undefined;
  const summary: RestoreSummary = { restored: 0, skipped: 0, failed: [] };
  try {
    for (const job of jobs) {
      if (args.skipExisting && (await stat(job.output).catch(() => undefined))) {
        (summary as { skipped: number }).skipped++;
        args.log(`${job.input}: skipped (${job.output} exists)`);
        folderBar?.increment();
        continue;
      }
      const imageBar = bars?.create(1, 0, { name: basename(job.input), what: 'encode' });
      try {
        const image = await readImageFile(job.input, { maxPixels: args.maxPixels, orient: true });
        const restored = await pipeline.restoreImage(generator, image, {
          tile: args.tile,
          overlap: args.overlap,
          color,
          deblock: args.deblock,
          postFilter: args.postFilter,
          grid: args.grid,
          vaeEncoderTile: args.vaeTile?.[0],
          vaeDecoderTile: args.vaeTile?.[1],
          onProgress: (stage, done, total) => {
            imageBar?.setTotal(total);
            imageBar?.update(done, { what: stage === 'unet' ? 'UNet tiles' : `VAE ${stage}` });
          },
        });
        await writeFileAtomic(job.output, encodePng(restored), { inputs });
        (summary as { restored: number }).restored++;
        args.log(`${job.input} → ${job.output}`);
      } catch (e) {
        // Image errors already name their file; out of memory gets what a user can do about it.
        const reason = isWasmOutOfMemory(e) ? WASM_OUT_OF_MEMORY : (e as Error).message.replace(`${job.input}: `, '');
        summary.failed.push({ file: job.input, reason });
        args.log(`${job.input}: failed: ${reason}`);
      } finally {
        if (imageBar) bars!.remove(imageBar);
        folderBar?.increment();
      }
    }
  } finally {
    bars?.stop();
    generator.dispose();
  }
  return summary;
}
