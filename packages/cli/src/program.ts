import { ImageIoError } from '@codiff/image-io';
import { JpegError, type Subsampling } from '@codiff/jpeg-codec';
import { basename, resolve } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { isWasmOutOfMemory } from './backend.js';
import { degradeCommand, formatInfo, jpegInfoCommand } from './commands.js';
import { convertWeightsCommand } from './convert.js';
import { evalCommand } from './eval.js';
import { CliError, DEFAULT_MAX_PIXELS } from './io.js';
import { formatMetrics, metricsCommand, WEIGHT_FILES } from './metrics.js';
import { cavePlotCommand, qualityCommand } from './quality.js';
import { restoreCommand, WASM_OUT_OF_MEMORY } from './restore.js';
import { fitPostFilterCommand, trainStage1Command, trainStage2Command, type TrainArgs } from './train.js';

const SUBSAMPLINGS = ['4:4:4', '4:2:2', '4:2:0', '4:4:0', '4:1:1'];

function intIn(name: string, min: number, max: number) {
  return (value: string) => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`${name} must be an integer ${min}..${max}`);
    return n;
  };
}

const positiveInt = (name: string) => intIn(name, 1, Number.MAX_SAFE_INTEGER);

const CAVE_MODEL_HELP = 'CaVE weights: a stage-1 run’s cave.safetensors or the official cave.pth (default: the CaVE codiff-lite ships)';

/** "5,10,20" → [5, 10, 20], each an IJG quality 1..100. */
function qualityList(value: string): number[] {
  const quality = intIn('--qf', 1, 100);
  const list = value.split(',').map((v) => quality(v.trim()));
  return [...new Set(list)];
}

/** "1024,224" → the tiled VAE's encoder and decoder tile sizes. */
function vaeTiles(value: string): [number, number] {
  const tiles = value.split(',').map((v) => Number(v.trim()));
  if (tiles.length !== 2 || !tiles.every((t) => Number.isInteger(t) && t > 0)) throw new InvalidArgumentError('--vae-tile takes two positive integers: encoder,decoder (e.g. 1024,224)');
  return tiles as [number, number];
}

/** "5,3" → the JPEG grid's phase: block edges before rows ≡ 5 and columns ≡ 3 (mod 8). */
function gridPhase(value: string): { top: number; left: number } {
  const phase = value.split(',').map((v) => Number(v.trim()));
  if (phase.length !== 2 || !phase.every((p) => Number.isInteger(p) && p >= 0 && p < 8)) {
    throw new InvalidArgumentError('--grid takes two integers 0..7: rows,cols (e.g. 5,3 for an image cropped by 3 rows and 5 columns from a JPEG)');
  }
  return { top: phase[0], left: phase[1] };
}

/** Every command that reads images takes the same pixel limit. */
const withMaxPixels = (command: Command) =>
  command.option(
    '--max-pixels <n>',
    `refuse images with more pixels (read from the header, before decoding); default ${DEFAULT_MAX_PIXELS.toLocaleString('en')}`,
    positiveInt('--max-pixels'),
    DEFAULT_MAX_PIXELS,
  );

const withQualityPatch = (command: Command) =>
  command.option(
    '--qf-patch <n>',
    'average CaVE’s QF head over n×n tiles (default: the patch a stage-1 run trained it on, from the checkpoint; else the whole image)',
    intIn('--qf-patch', 32, 2 ** 16),
  );

/** JSON in which non-finite numbers (an identical pair's PSNR) are the strings "inf", "-inf", "nan", never null. */
export function toJson(value: unknown): string {
  return JSON.stringify(
    value,
    (_key, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? (Number.isNaN(v) ? 'nan' : v > 0 ? 'inf' : '-inf') : v),
    2,
  );
}

export interface Io {
  out: (line: string) => void;
  err: (line: string) => void;
}

/** Build the `codiff` program. Separate from bin.ts so tests can run it in-process. */
export function buildProgram(io: Io): Command {
  const program = new Command('codiff')
    .description('CODiff JPEG artifact removal toolkit')
    .version('0.1.0')
    .configureOutput({
      writeOut: (s) => io.out(s.trimEnd()),
      writeErr: (s) => io.err(s.trimEnd()),
      // commander's own errors ("error: unknown option …") in the same one-line form as ours.
      outputError: (s, write) => write(`codiff: ${s.replace(/^error: /, '').trimEnd().replace(/\s*\n\s*/g, ' ')}\n`),
    })
    .showSuggestionAfterError()
    .exitOverride();

  withMaxPixels(
    program
      .command('degrade')
      .description('JPEG-compress an image exactly as PIL/OpenCV (libjpeg-turbo) do; .jpg output keeps the JPEG, .png the decoded pixels')
      .argument('<input>', 'PNG or JPEG image (grey images give a grey JPEG)')
      .requiredOption('-q, --quality <qf>', 'IJG quality factor 1..100', intIn('quality', 1, 100))
      .requiredOption('-o, --output <file>', 'output .jpg/.jpeg (the JPEG) or .png (decoded degraded image); never one of the inputs')
      .option('-s, --subsampling <mode>', `chroma subsampling: ${SUBSAMPLINGS.join(', ')}`, '4:2:0')
      .option('--double <qf2>', 'double compression: recompress at this quality', intIn('double quality', 1, 100))
      .option('--shift <k>', 'with --double: crop k rows/cols before the second pass (4 = non-aligned)', intIn('shift', 0, 65535), 0)
      .option('--optimize', 'optimal Huffman tables (smaller file, same pixels)', false)
      .option('--restart <mcus>', 'restart marker every N MCUs', intIn('restart', 0, 65535), 0),
  ).action(async (input: string, opts) => {
    if (!SUBSAMPLINGS.includes(opts.subsampling)) {
      throw new CliError(`--subsampling must be one of ${SUBSAMPLINGS.join(', ')}`);
    }
    if (opts.shift && opts.double === undefined) throw new CliError('--shift needs --double');
    const r = await degradeCommand({
      input,
      output: opts.output,
      quality: opts.quality,
      subsampling: opts.subsampling as Subsampling,
      double: opts.double,
      shift: opts.shift,
      optimize: opts.optimize,
      restart: opts.restart,
      maxPixels: opts.maxPixels,
    });
    const q = opts.double === undefined ? `q${opts.quality}` : `q${opts.quality} → q${opts.double}${opts.shift ? ` (shift ${opts.shift})` : ''}`;
    io.out(`${opts.output}: ${r.width}×${r.height}, ${q}, ${r.jpegBytes} JPEG bytes, PSNR ${r.psnr.toFixed(2)} dB`);
  });

  withMaxPixels(
    program
      .command('jpeg-info')
      .description('dimensions, subsampling, progressive, quantisation tables and estimated quality of a JPEG')
      .argument('<file>', 'JPEG file')
      .option('--json', 'machine-readable output', false),
  ).action(async (file: string, opts) => {
    const info = await jpegInfoCommand(file, opts.maxPixels);
    if (opts.json) {
      io.out(toJson({ ...info, quantTables: info.quantTables.map((t) => (t ? Array.from(t) : null)) }));
    } else io.out(formatInfo(file, info));
  });

  withMaxPixels(
    program
      .command('metrics')
      .description('PSNR (Y and RGB) and SSIM (Y) of a test image against a reference; with VGG weights also LPIPS and DISTS')
      .argument('<reference>', 'reference PNG or JPEG')
      .argument('<test>', 'image to measure, same size')
      .option('--crop <px>', 'pixels dropped from every border first', intIn('crop', 0, 65535), 0)
      .option('--vgg <path>', `VGG16 trunk (safetensors), or a folder with ${Object.values(WEIGHT_FILES).join(', ')}`)
      .option('--dists <file>', 'DISTS alpha/beta (safetensors)')
      .option('--lpips <file>', 'LPIPS v0.1 vgg linear heads (safetensors)')
      .option('--backend <name>', 'TF.js backend for LPIPS/DISTS: wasm, webgpu, cpu, tensorflow')
      .option('--json', 'machine-readable output; an infinite PSNR (identical images) is the string "inf"', false),
  ).action(async (reference: string, test: string, opts) => {
    const r = await metricsCommand({
      reference,
      test,
      crop: opts.crop,
      vgg: opts.vgg,
      dists: opts.dists,
      lpips: opts.lpips,
      backend: opts.backend,
      maxPixels: opts.maxPixels,
    });
    io.out(opts.json ? toJson(r) : formatMetrics(r, opts.crop));
  });

  withMaxPixels(
    program
      .command('eval')
      .description('measure restoration quality: JPEG the ground truth at each QF, restore, and report PSNR-Y, SSIM-Y, PSNR-B, LPIPS')
      .requiredOption('--data <folder...>', 'folder(s) of PNG/JPEG ground truth; each subfolder holding images is a set of its own')
      .requiredOption('--qf <list>', 'JPEG qualities, e.g. 5,10,20,40', qualityList)
      .option('--protocol <name>', "'codiff' (PIL LANCZOS to multiples of 8, as CODiff's test) or 'full' (images as they are)", 'codiff')
      .option('--restorer <command>', "the method under test: a command with {in} (the JPEG) and {out} (a PNG to write), e.g. 'python3 run.py {in} {out}'")
      .option('--model <folder|lite>', "the method under test: a CODiff model run in-process, a model folder or 'lite' (codiff-lite, which ships with codiff)")
      .option('--color <fix>', 'colour fix of --model: adain (official), wavelet or none', 'adain')
      .option('--deblock', 'smooth the block edges --model left (the default for codiff-lite)')
      .option('--no-deblock', 'leave them (the default for the SD-based CODiff)')
      .option('--post-filter', 'run the --model folder’s learned luma post-filter after the smoothing (see codiff restore --post-filter)')
      .option('--name <name>', "its name in the report (default: 'restored', or the model's)")
      .option('--compare <method...>', "baselines: jpegqs (Debian's), dncnn3 (needs --weights), or name='command {in} {out}'", [])
      .option('--weights <folder>', 'folder laid out as ../shared/weights: SqueezeNet 1.1 + LPIPS heads (LPIPS-squeeze), dncnn3/')
      .option('--vgg <folder>', 'also LPIPS-vgg and DISTS: a folder with vgg16.safetensors, dists_weights.safetensors, lpips_vgg_v0.1.safetensors')
      .option('-o, --out <folder>', 'write results.csv, summary.md, summary.json and contact-qf<N>.png there')
      .option('--backend <name>', 'TF.js backend for LPIPS and DnCNN-3: wasm, webgpu, cpu, tensorflow')
      .option('--threads <n>', 'wasm threads (default: the machine’s cores)', intIn('threads', 1, 8))
      .option('--json', 'print the summary as JSON (infinite PSNR as "inf")', false),
  ).action(async (opts) => {
    if (!['codiff', 'full'].includes(opts.protocol)) throw new CliError("--protocol must be 'codiff' or 'full'");
    if (opts.model && opts.restorer) throw new CliError('give one method under test: --restorer or --model');
    const r = await evalCommand({
      data: opts.data,
      qualities: opts.qf,
      protocol: opts.protocol,
      restorer: opts.restorer,
      model: opts.model,
      color: opts.color,
      deblock: opts.deblock,
      postFilter: opts.postFilter,
      restorerName: opts.name ?? (opts.model === 'lite' ? 'codiff-lite' : opts.model ? basename(resolve(opts.model)) : 'restored'),
      compare: opts.compare,
      weights: opts.weights,
      vgg: opts.vgg,
      out: opts.out,
      backend: opts.backend,
      threads: opts.threads,
      maxPixels: opts.maxPixels,
      progress: !opts.json && process.stderr.isTTY === true,
    });
    if (opts.json) io.out(toJson({ protocol: opts.protocol, methods: r.evaluation.methods, summary: r.evaluation.summary, seconds: r.seconds }));
    else {
      const { summaryMarkdown } = await import('@codiff/eval');
      io.out(summaryMarkdown(r.evaluation.summary).trimEnd());
      io.out(`${r.evaluation.rows.length} measurements in ${r.seconds.toFixed(1)} s${r.written.length ? `; report in ${opts.out}` : ''}`);
    }
  });

  program
    .command('convert-weights')
    .description('convert a PyTorch checkpoint (.pth/.pt/.bin, zip or legacy format; its pickle code is never run) or a safetensors file to safetensors')
    .argument('<input>', 'PyTorch checkpoint or .safetensors')
    .argument('<output>', 'output .safetensors (written atomically; never the input)')
    .option('--only <prefix...>', "keep only keys starting with these prefixes (e.g. 'features.' for VGG16)", [])
    .option('--dtype <dtype>', 'stored dtype: F32, F16, BF16', 'F32')
    .option('--max-tensors <n>', 'raise the reader’s tensor-count limit (default 20000) for a file you trust', positiveInt('--max-tensors'))
    .option('--max-bytes <n>', 'raise the reader’s limit on float32 bytes read (default 8 × file size + 256 MiB)', positiveInt('--max-bytes'))
    .action(async (input: string, output: string, opts) => {
      const dtype = String(opts.dtype).toUpperCase();
      if (!['F32', 'F16', 'BF16'].includes(dtype)) throw new CliError('--dtype must be F32, F16 or BF16');
      const limits = { ...(opts.maxTensors && { maxTensors: opts.maxTensors }), ...(opts.maxBytes && { maxBytes: opts.maxBytes }) };
      const r = await convertWeightsCommand({ input, output, only: opts.only, dtype: dtype as 'F32' | 'F16' | 'BF16', limits });
      const kept = Object.entries(r.stored).filter(([d]) => d !== dtype);
      const dtypes = kept.length === 0 ? dtype : `${r.stored[dtype] ?? 0} ${dtype}, ${kept.map(([d, n]) => `${n} ${d}`).join(', ')}: beyond ${dtype}'s range`;
      io.out(`${output}: ${r.tensors} tensors (${dtypes}), ${r.bytes} bytes${r.skipped ? `; ${r.skipped} tensors left out by --only` : ''}`);
    });

  withMaxPixels(
    withQualityPatch(program
      .command('quality')
      .description('JPEG quality: the QF read from each file’s quantisation tables beside CaVE’s estimate from the pixels alone')
      .argument('<image...>', 'JPEG files (a PNG gets CaVE’s estimate only)')
      .option('--model <file>', CAVE_MODEL_HELP))
      .option('--backend <name>', 'TF.js backend: wasm (default), webgpu, cpu, tensorflow')
      .option('--threads <n>', 'wasm threads (default: the machine’s cores)', intIn('threads', 1, 8))
      .option('--json', 'print JSON', false),
  ).action(async (files: string[], opts) => {
    const rows = await qualityCommand(files, { model: opts.model, qualityPatch: opts.qfPatch, backend: opts.backend, threads: opts.threads, maxPixels: opts.maxPixels });
    if (opts.json) io.out(toJson(rows));
    else {
      for (const r of rows) {
        const tables = r.tables ? `QF ${r.tables.quality}${r.tables.exact ? '' : ' (nearest IJG table)'}` : 'none (not a JPEG)';
        io.out(`${r.file}: tables ${tables}; CaVE ${r.cave.toFixed(1)}`);
      }
    }
  });

  withQualityPatch(program
    .command('cave-plot')
    .description('embed each photo at each QF with CaVE and draw a UMAP map coloured by QF; print the QF estimate’s error per QF')
    .requiredOption('--data <folder>', 'photos (PNG/JPEG, searched recursively; larger ones are centre-cropped to 512²)')
    .option('--qf <list>', 'JPEG qualities', qualityList, [1, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90])
    .requiredOption('-o, --output <file>', 'the map, .png or .svg')
    .option('--model <file>', CAVE_MODEL_HELP))
    .option('--backend <name>', 'TF.js backend: wasm (default), webgpu, cpu, tensorflow')
    .option('--threads <n>', 'wasm threads (default: the machine’s cores)', intIn('threads', 1, 8))
    .option('--seed <n>', 'UMAP seed', intIn('--seed', 0, 2 ** 31 - 1), 0)
    .action(async (opts) => {
      const r = await cavePlotCommand({ data: opts.data, qualities: opts.qf, output: opts.output, model: opts.model, qualityPatch: opts.qfPatch, backend: opts.backend, threads: opts.threads, seed: opts.seed, progress: process.stderr.isTTY === true });
      io.out('QF  | mean estimate | MAE');
      for (const row of r.rows) io.out(`${String(row.quality).padStart(3)} | ${row.meanEstimate.toFixed(1).padStart(13)} | ${row.mae.toFixed(2)}`);
      io.out(`${r.photos} photos; map in ${r.output}`);
    });

  withMaxPixels(
    program
      .command('restore')
      .description('remove JPEG artifacts with CODiff: each JPEG/PNG (folders searched recursively) restored into a PNG')
      .argument('<input...>', 'JPEG or PNG files, or folders of them')
      .requiredOption('-o, --output <path>', 'output folder (mirrors the inputs), or a .png file for a single input')
      .option('--model <folder>', 'CODiff model folder: SD 2.1-base unet/ and vae/, codiff.pkl or codiff.safetensors, cave.pth or cave.safetensors (default: codiff-lite, which ships with codiff)')
      .option('--tile <n>', 'latent tile size (official 96)', positiveInt('--tile'))
      .option('--overlap <n>', 'latent tile overlap (official 32)', intIn('--overlap', 0, Number.MAX_SAFE_INTEGER))
      .option('--color <fix>', 'colour fix: adain (official), wavelet or none', 'adain')
      .option('--deblock', 'smooth the block edges the model left, no more than down to the level inside blocks (the default for codiff-lite)')
      .option('--no-deblock', 'leave them (the default for the SD-based CODiff, as the paper)')
      .option('--post-filter', 'favour PSNR over perceptual quality: after the smoothing, run the model folder’s learned luma post-filter (codiff-lite has one: about +0.3 dB PSNR-Y at QF 10, LPIPS worse)')
      .option('--grid <rows,cols>', 'where the smoothing finds the JPEG’s 8×8 grid: block edges before rows ≡ rows and columns ≡ cols (mod 8); 5,3 for an image cropped by 3 rows and 5 columns from a JPEG (default 0,0, a JPEG file’s own)', gridPhase)
      .option('--vae-tile <encoder,decoder>', 'tiled-VAE tile sizes: encoder px, decoder latent px (official 1024,224; smaller uses less memory)', vaeTiles)
      .option('--skip-existing', 'leave inputs whose output already exists (to resume a folder)', false)
      .option('--backend <name>', 'TF.js backend: wasm (default), webgpu, cpu, tensorflow')
      .option('--threads <n>', 'wasm threads (default: the machine’s cores)', intIn('threads', 1, 8)),
  ).action(async (inputs: string[], opts) => {
    const r = await restoreCommand({
      inputs,
      output: opts.output,
      model: opts.model,
      tile: opts.tile,
      overlap: opts.overlap,
      color: opts.color,
      deblock: opts.deblock,
      postFilter: opts.postFilter,
      grid: opts.grid,
      vaeTile: opts.vaeTile,
      backend: opts.backend,
      threads: opts.threads,
      skipExisting: opts.skipExisting,
      maxPixels: opts.maxPixels,
      progress: process.stderr.isTTY === true,
      log: io.err,
    });
    io.out(`${r.restored} restored, ${r.skipped} skipped, ${r.failed.length} failed; output in ${opts.output}`);
    if (r.failed.length) throw new CliError(`${r.failed.length} of ${r.restored + r.skipped + r.failed.length} files failed: ${r.failed.map((f) => f.file).join(', ')}`);
  });

  program
    .command('serve')
    .description('serve the codiff web page (restore JPEGs in a browser tab, WebGPU or wasm; nothing is uploaded) and print its address')
    .option('--port <n>', 'port (0: any free one)', intIn('port', 0, 65535), 5180)
    .option('--host <address>', '127.0.0.1 (this machine only) or 0.0.0.0 (the network)', '127.0.0.1')
    .action(async (opts) => {
      const { serveSite } = await import('@codiff/web/node');
      const site = await serveSite({ port: opts.port, host: opts.host }).catch((e: Error) => {
        throw new CliError(e.message);
      });
      io.out(`codiff web page: ${site.url}  (Ctrl-C stops)`);
      // The open server keeps the process alive; a signal closes it and the process ends normally.
      for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => void site.close());
    });

  const train = program.command('train').description('train CODiff: stage1 (CaVE), stage2 (the generator); plot a run’s curves');
  /** What both stages take besides their own options. */
  const runOptions = (command: Command) =>
    command
      .option('--resume', 'continue the run in --out from its checkpoint', false)
      .option('--steps <n>', 'override the configuration’s step count', positiveInt('--steps'))
      .option('--seed <n>', 'override the configuration’s seed', intIn('--seed', 0, 2 ** 31 - 1))
      .option('--workers <n>', 'data worker threads (default: cores, at most 4)', intIn('--workers', 1, 64))
      .option('--backend <name>', 'TF.js backend: wasm (default), webgpu, cpu, tensorflow')
      .option('--threads <n>', 'wasm threads (default: the machine’s cores)', intIn('threads', 1, 8));
  const runArgs = (opts: Record<string, unknown>): TrainArgs => ({
    config: opts.config as string,
    data: opts.data as string,
    val: opts.val as string | undefined,
    out: opts.out as string,
    resume: opts.resume as boolean,
    init: opts.init as string | undefined,
    steps: opts.steps as number | undefined,
    seed: opts.seed as number | undefined,
    workers: opts.workers as number | undefined,
    backend: opts.backend as string | undefined,
    threads: opts.threads as number | undefined,
    progress: process.stderr.isTTY === true,
    log: io.err,
  });
  const finished = (r: { stopped: boolean; step: number; seconds: number; backend: string; threads?: number; meanDataFraction: number; skipped: number }, out: string) =>
    `${r.stopped ? 'stopped' : 'finished'} at step ${r.step} in ${r.seconds.toFixed(0)} s on ${r.backend}${r.threads ? ` × ${r.threads} thread${r.threads === 1 ? '' : 's'}` : ''}; data wait ${(100 * r.meanDataFraction).toFixed(1)} % of step time${r.skipped ? `; ${r.skipped} file(s) skipped` : ''}; run in ${out}`;

  runOptions(
    train
      .command('stage1')
      .description('train CaVE on a folder of photos (JPEG pairs made on the fly as the official pipeline); Ctrl-C checkpoints')
      .requiredOption('--data <folder>', 'training photos (PNG/JPEG, searched recursively)')
      .option('--val <folder>', 'validation photos: reconstruction L1 and QF error every validateEvery steps')
      .requiredOption('--out <folder>', 'run folder: checkpoint.safetensors, cave.safetensors, log.jsonl, loss-curve.svg')
      .option('--config <name|file>', "'lite', 'lite-b64' (batch 64: the recipe whose QF head learns, ≈ 7 h on 2 cores), 'lite-b64-anneal' (its second half, with --init), 'official', or a JSON file of the same shape (\"extends\": a name or file, then only what differs)", 'lite')
      .option('--init <weights>', 'start a new run from these CaVE weights (a run’s cave.safetensors, or the official cave.pth)'),
  ).action(async (opts) => io.out(finished(await trainStage1Command(runArgs(opts)), opts.out)));
  runOptions(
    train
      .command('stage2')
      .description('train the CODiff generator (SD 2.1 + LoRA, CaVE-conditioned) and its latent discriminator on a folder of photos, or codiff-lite from scratch (--config lite); Ctrl-C checkpoints')
      .requiredOption('--data <folder>', 'training photos (PNG/JPEG, searched recursively)')
      .option('--val <folder>', 'validation photos: restoration MSE and PSNR every validateEvery steps')
      .requiredOption('--out <folder>', 'run folder: checkpoint.safetensors, codiff.safetensors (lite: the model folder model/), log.jsonl, loss-curve.svg')
      .option('--sd <folder>', 'Stable Diffusion 2.1-base in diffusers layout (unet/, vae/); not for lite, which trains its UNet from scratch')
      .requiredOption('--cave <file>', 'CaVE weights: a stage-1 run’s cave.safetensors or the official cave.pth')
      .requiredOption('--perceptual-weights <folder>', 'DISTS: vgg16.safetensors + dists_weights.safetensors; lpips-squeeze: laid out as ../shared/weights')
      .option('--config <name|file>', "'official', 'tiny', 'lite' (codiff-lite from scratch), 'lite-anneal' (its decaying-rate fine-tune, with --init), or a JSON file of the same shape (\"extends\": a name or file, then only what differs)", 'official')
      .option('--gan-gradient', 'let the adversarial gradient reach the generator (the paper; the official code blocks it)')
      .option('--init <checkpoint|folder>', 'start a new run from a trained generator: codiff.pkl / model.pkl or codiff.safetensors; for lite a model folder (a run’s model/, or @codiff/model-lite’s)'),
  ).action(async (opts) => {
    const r = await trainStage2Command({ ...runArgs(opts), sd: opts.sd, cave: opts.cave, perceptualWeights: opts.perceptualWeights, ganGradient: opts.ganGradient });
    io.out(`${finished(r, opts.out)} (${r.lite ? 'model/' : 'codiff.safetensors'})`);
  });
  train
    .command('postfilter')
    .description('fit a codiff-lite model folder’s luma post-filter (postfilter.safetensors, run by restore after the block-edge smoothing) to its restores of a photo folder; one pass, minutes')
    .requiredOption('--data <folder>', 'training photos (PNG/JPEG, searched recursively)')
    .option('--model <folder>', 'model folder (default: codiff-lite as shipped)')
    .option('--every <n>', 'use every n-th photo in name order', positiveInt('--every'), 1)
    .option('--qf <list>', 'JPEG qualities to fit at (default 5,10,20,30,40,60)', qualityList)
    .option('--stages <n>', 'filter stages, each fitted on the previous one’s outputs (default 2)', intIn('--stages', 1, 8))
    .option('-o, --out <file>', 'where to write the filter (default: postfilter.safetensors in the model folder)')
    .option('--backend <name>', 'TF.js backend: wasm (default), webgpu, cpu, tensorflow')
    .option('--threads <n>', 'wasm threads (default: the machine’s cores)', intIn('threads', 1, 8))
    .action(async (opts) => {
      const r = await fitPostFilterCommand({ model: opts.model, data: opts.data, every: opts.every, qualities: opts.qf, stages: opts.stages, out: opts.out, backend: opts.backend, threads: opts.threads, log: io.err });
      io.out(`fitted on ${r.photos} photos (${r.samples} pixels) in ${r.seconds.toFixed(0)} s on ${r.backend}; wrote ${r.out}`);
    });
  train
    .command('plot')
    .description('draw loss-curve.svg of a run folder from its log (also written at the end of every run)')
    .argument('<run>', 'run folder')
    .action(async (run: string) => {
      const { writeCurves } = await import('@codiff/train/node');
      io.out(await writeCurves(run));
    });

  return program;
}

/** The one line an error becomes: the library's typed errors and ours as they are, anything else marked unexpected. */
export function errorLine(e: unknown): string {
  if (e instanceof JpegError) return `codiff: ${e.code}: ${e.message}`;
  if (isWasmOutOfMemory(e)) return `codiff: ${WASM_OUT_OF_MEMORY}`;
  // The TF.js packages' errors by name: importing those packages here would load TF.js for every command.
  if (e instanceof CliError || e instanceof ImageIoError || (e instanceof Error && ['NnError', 'EvalError', 'CaveError', 'TrainError', 'PipelineError'].includes(e.name))) return `codiff: ${e.message}`;
  if (e instanceof RangeError && /allocation failed|Invalid typed array length|Array buffer/.test(e.message)) {
    return `codiff: out of memory (${e.message}); try a smaller image or --max-pixels`;
  }
  const message = e instanceof Error ? e.message : String(e);
  return `codiff: unexpected error: ${message.split('\n')[0]} (set CODIFF_DEBUG=1 for details)`;
}

/** Run the CLI; returns the exit code. Every failure prints one line; CODIFF_DEBUG=1 adds the stack trace. */
export async function run(argv: string[], io: Io = { out: console.log, err: console.error }): Promise<number> {
  const program = buildProgram(io);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (e) {
    const err = e as { code?: string; exitCode?: number };
    if (typeof err.code === 'string' && err.code.startsWith('commander.')) {
      return err.code === 'commander.helpDisplayed' || err.code === 'commander.version' ? 0 : (err.exitCode ?? 1);
    }
    io.err(errorLine(e));
    if (process.env.CODIFF_DEBUG === '1' && e instanceof Error && e.stack) io.err(e.stack);
    return 1;
  }
}
