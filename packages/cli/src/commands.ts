import { encodePng } from '@codiff/image-io';
import { readFileBytes } from '@codiff/image-io/node';
import { crop, decodeJpeg, encodeJpeg, readJpegInfo, type JpegInfo, type RawImage, type Subsampling } from '@codiff/jpeg-codec';
import { psnr } from '@codiff/metrics';
import { CliError, outputKind, readImage, writeOutput } from './io.js';

export interface DegradeArgs {
  input: string;
  output: string;
  quality: number;
  subsampling: Subsampling;
  /** Second quality for double compression. */
  double?: number;
  shift: number;
  optimize: boolean;
  restart: number;
  /** Refuse larger inputs (from the header, before decoding). */
  maxPixels: number;
}

export interface DegradeResult {
  width: number;
  height: number;
  jpegBytes: number;
  /** PSNR (dB, RGB) of the degraded image against the (cropped) input. */
  psnr: number;
}

/**
 * JPEG-degrade an image as PIL/OpenCV would, optionally twice; write the JPEG or its decoded PNG. Grey images stay
 * grey (a one-component JPEG, as PIL writes for mode L). Everything is computed before the output is written.
 * Memory: the input and the degraded pixels (1 or 3 bytes per pixel each), the JPEG, and the decoder's planes.
 */
export async function degradeCommand(args: DegradeArgs): Promise<DegradeResult> {
  const kind = outputKind(args.output);
  const source = await readImage(args.input, { maxPixels: args.maxPixels });
  // What the last compression sees, and what its result is compared with.
  let toEncode: RawImage = source;
  let reference: RawImage = source;
  let quality = args.quality;
  if (args.double !== undefined) {
    const { width, height } = source;
    if (args.shift >= Math.min(width, height)) {
      throw new CliError(`--shift ${args.shift} is not smaller than the image (${width}×${height})`);
    }
    const first = decodeJpeg(encodeJpeg(source, { quality: args.quality, subsampling: args.subsampling }), { output: 'native' });
    toEncode = crop(first, args.shift, args.shift, width - args.shift, height - args.shift);
    reference = crop(source, args.shift, args.shift, width - args.shift, height - args.shift);
    quality = args.double;
  }
  const jpeg = encodeJpeg(toEncode, {
    quality,
    subsampling: args.subsampling,
    optimizeHuffman: args.optimize,
    restartInterval: args.restart,
  });
  const degraded = decodeJpeg(jpeg, { output: 'native', maxPixels: args.maxPixels });
  const result = { width: degraded.width, height: degraded.height, jpegBytes: jpeg.length, psnr: psnr(reference, degraded, { on: 'rgb' }) };
  await writeOutput(args.output, kind === 'jpeg' ? jpeg : encodePng(degraded), [args.input]);
  return result;
}

export async function jpegInfoCommand(path: string, maxPixels: number): Promise<JpegInfo> {
  return readJpegInfo(await readFileBytes(path), { maxPixels });
}

/** Human-readable report of `readJpegInfo`. */
export function formatInfo(path: string, info: JpegInfo): string {
  const lines = [
    `${path}`,
    `  size:          ${info.width}×${info.height}`,
    `  frame:         ${info.frame}${info.frame === 'progressive' ? ` (${info.scans} scans)` : ''}`,
    `  colour space:  ${info.colorSpace}`,
    `  subsampling:   ${info.subsampling ?? 'none (grayscale)'}`,
    `  components:    ${info.components.map((c) => `#${c.id} ${c.h}×${c.v} q${c.quantTable}`).join(', ')}`,
    `  quality:       ${info.quality ? `${info.quality.quality} (${info.quality.exact ? 'exact IJG tables' : 'estimate; tables are not IJG-scaled'})` : 'unknown'}`,
    `  restart:       ${info.restartInterval ? `every ${info.restartInterval} MCUs` : 'none'}`,
  ];
  if (info.orientation !== undefined) lines.push(`  orientation:   ${info.orientation} (EXIF; pixels are not rotated)`);
  if (info.hasIccProfile) lines.push('  ICC profile:   present (ignored)');
  info.quantTables.forEach((t, id) => {
    if (!t) return;
    lines.push(`  quantisation table ${id} (${info.quantPrecisionBits[id]}-bit):`);
    for (let r = 0; r < 8; r++) lines.push('    ' + Array.from(t.subarray(r * 8, r * 8 + 8), (v) => String(v).padStart(4)).join(''));
  });
  for (const w of info.warnings) lines.push(`  warning: ${w}`);
  return lines.join('\n');
}
