import { JpegError, type Subsampling } from '@codiff/jpeg-codec';
import { Command, InvalidArgumentError } from 'commander';
import { degradeCommand, formatInfo, jpegInfoCommand } from './commands.js';
import { convertWeightsCommand } from './convert.js';
import { CliError } from './image-io.js';
import { formatMetrics, metricsCommand, WEIGHT_FILES } from './metrics.js';

const SUBSAMPLINGS = ['4:4:4', '4:2:2', '4:2:0', '4:4:0', '4:1:1'];

function intIn(name: string, min: number, max: number) {
  return (value: string) => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`${name} must be an integer ${min}..${max}`);
    return n;
  };
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
    .configureOutput({ writeOut: (s) => io.out(s.trimEnd()), writeErr: (s) => io.err(s.trimEnd()) })
    .exitOverride();

  program
    .command('degrade')
    .description('JPEG-compress an image exactly as PIL/OpenCV (libjpeg-turbo) do; .jpg output keeps the JPEG, .png the decoded pixels')
    .argument('<input>', 'PNG or JPEG image')
    .requiredOption('-q, --quality <qf>', 'IJG quality factor 1..100', intIn('quality', 1, 100))
    .requiredOption('-o, --output <file>', 'output .jpg/.jpeg (the JPEG) or .png (decoded degraded image)')
    .option('-s, --subsampling <mode>', `chroma subsampling: ${SUBSAMPLINGS.join(', ')}`, '4:2:0')
    .option('--double <qf2>', 'double compression: recompress at this quality', intIn('double quality', 1, 100))
    .option('--shift <k>', 'with --double: crop k rows/cols before the second pass (4 = non-aligned)', intIn('shift', 0, 65535), 0)
    .option('--optimize', 'optimal Huffman tables (smaller file, same pixels)', false)
    .option('--restart <mcus>', 'restart marker every N MCUs', intIn('restart', 0, 65535), 0)
    .action(async (input: string, opts) => {
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
      });
      const q = opts.double === undefined ? `q${opts.quality}` : `q${opts.quality} → q${opts.double}${opts.shift ? ` (shift ${opts.shift})` : ''}`;
      io.out(`${opts.output}: ${r.width}×${r.height}, ${q}, ${r.jpegBytes} JPEG bytes, PSNR ${r.psnr.toFixed(2)} dB`);
    });

  program
    .command('jpeg-info')
    .description('dimensions, subsampling, progressive, quantisation tables and estimated quality of a JPEG')
    .argument('<file>', 'JPEG file')
    .option('--json', 'machine-readable output', false)
    .action(async (file: string, opts) => {
      const info = await jpegInfoCommand(file);
      if (opts.json) {
        io.out(JSON.stringify({ ...info, quantTables: info.quantTables.map((t) => (t ? Array.from(t) : null)) }, null, 2));
      } else io.out(formatInfo(file, info));
    });

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
    .option('--json', 'machine-readable output', false)
    .action(async (reference: string, test: string, opts) => {
      const r = await metricsCommand({ reference, test, crop: opts.crop, vgg: opts.vgg, dists: opts.dists, lpips: opts.lpips, backend: opts.backend });
      io.out(opts.json ? JSON.stringify(r) : formatMetrics(r, opts.crop));
    });

  program
    .command('convert-weights')
    .description('convert a PyTorch checkpoint (.pth/.pt/.bin, zip or legacy format) to safetensors without running its pickle code')
    .argument('<input>', 'PyTorch checkpoint')
    .argument('<output>', 'output .safetensors')
    .option('--only <prefix...>', "keep only keys starting with these prefixes (e.g. 'features.' for VGG16)", [])
    .option('--dtype <dtype>', 'stored dtype: F32, F16, BF16', 'F32')
    .action(async (input: string, output: string, opts) => {
      const dtype = String(opts.dtype).toUpperCase();
      if (!['F32', 'F16', 'BF16'].includes(dtype)) throw new CliError('--dtype must be F32, F16 or BF16');
      const r = await convertWeightsCommand({ input, output, only: opts.only, dtype: dtype as 'F32' | 'F16' | 'BF16' });
      io.out(`${output}: ${r.tensors} tensors (${dtype}), ${r.bytes} bytes${r.skipped ? `; ${r.skipped} tensors left out by --only` : ''}`);
    });

  return program;
}

/** Run the CLI; returns the exit code. Expected failures print one clear line, never a stack trace. */
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
    if (e instanceof CliError || e instanceof JpegError) {
      io.err(`codiff: ${e instanceof JpegError ? `${e.code}: ` : ''}${e.message}`);
      return 1;
    }
    throw e;
  }
}
