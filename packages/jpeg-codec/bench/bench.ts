// Encode (q75, 4:2:0) and decode speed on a 1024×1024 photo-like image, against jpeg-js, @jsquash/jpeg (mozjpeg
// compiled to wasm; baseline, fastest profile = no trellis) and sharp (libvips + libjpeg-turbo, native), in one run.
//   nx run jpeg-codec:bench            (or: npm run bench -w @codiff/jpeg-codec -- --size 1024 --seconds 3)
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus } from 'node:os';
import decodeMozjpeg, { init as initMozjpegDecoder } from '@jsquash/jpeg/decode.js';
import encodeMozjpeg, { init as initMozjpegEncoder } from '@jsquash/jpeg/encode.js';
import jpegJs from 'jpeg-js';
import sharp from 'sharp';
import { decodeJpeg, encodeJpeg } from '../src/index.js';
import { syntheticPhoto } from '../test/synthetic.js';

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};
const size = arg('size', 1024);
const seconds = arg('seconds', 3);
const QUALITY = 75;

const require = createRequire(import.meta.url);
const wasm = (p: string) => WebAssembly.compile(readFileSync(require.resolve(p)));
await initMozjpegEncoder(await wasm('@jsquash/jpeg/codec/enc/mozjpeg_enc.wasm'));
await initMozjpegDecoder(await wasm('@jsquash/jpeg/codec/dec/mozjpeg_dec.wasm'));

const image = syntheticPhoto(size, size, 1);
const rgba = new Uint8ClampedArray(size * size * 4);
for (let i = 0; i < size * size; i++) {
  rgba.set(image.data.subarray(3 * i, 3 * i + 3), 4 * i);
  rgba[4 * i + 3] = 255;
}
const rgbBuffer = Buffer.from(image.data);
const jpeg = encodeJpeg(image, { quality: QUALITY });
const jpegBuffer = Buffer.from(jpeg);
const megapixels = (size * size) / 1e6;

/** Median and best wall time (ms) over as many runs as fit in `seconds`, after warm-up. */
async function time(fn: () => unknown | Promise<unknown>): Promise<{ median: number; best: number }> {
  for (let i = 0; i < 3; i++) await fn();
  const samples: number[] = [];
  const end = performance.now() + seconds * 1000;
  while (samples.length < 5 || (performance.now() < end && samples.length < 200)) {
    const t = performance.now();
    await fn();
    samples.push(performance.now() - t);
  }
  samples.sort((a, b) => a - b);
  return { median: samples[samples.length >> 1]!, best: samples[0]! };
}

const mozjpegBaseline = {
  quality: QUALITY, baseline: true, progressive: false, optimize_coding: false, trellis_multipass: false,
  trellis_opt_zero: false, trellis_opt_table: false, auto_subsample: false, chroma_subsample: 2, quant_table: 0,
};

const encoders: [string, () => unknown][] = [
  ['@codiff/jpeg-codec', () => encodeJpeg(image, { quality: QUALITY })],
  ['jpeg-js', () => jpegJs.encode({ data: rgba, width: size, height: size }, QUALITY)],
  ['@jsquash/jpeg (mozjpeg wasm)', () => encodeMozjpeg({ data: rgba, width: size, height: size, colorSpace: 'srgb' }, mozjpegBaseline)],
  ['sharp (native)', () => sharp(rgbBuffer, { raw: { width: size, height: size, channels: 3 } }).jpeg({ quality: QUALITY, chromaSubsampling: '4:2:0' }).toBuffer()],
];
const decoders: [string, () => unknown][] = [
  ['@codiff/jpeg-codec', () => decodeJpeg(jpeg)],
  ['jpeg-js', () => jpegJs.decode(jpegBuffer, { useTArray: true, formatAsRGBA: false })],
  ['@jsquash/jpeg (mozjpeg wasm)', () => decodeMozjpeg(jpeg.buffer as ArrayBuffer)],
  ['sharp (native)', () => sharp(jpegBuffer).raw().toBuffer()],
];

async function table(title: string, cases: [string, () => unknown][]) {
  const results: [string, { median: number; best: number }][] = [];
  for (const [name, fn] of cases) results.push([name, await time(fn)]);
  const ours = results[0]![1];
  console.log(`\n${title} (${size}×${size}, ${megapixels.toFixed(2)} MP)`);
  console.log('  implementation                 median ms  best ms   MP/s (median)   its time ÷ ours (median / best)');
  for (const [name, t] of results) {
    const ratio = name === results[0]![0] ? '—' : `${(t.median / ours.median).toFixed(2)}× / ${(t.best / ours.best).toFixed(2)}×`;
    console.log(
      `  ${name.padEnd(30)} ${t.median.toFixed(1).padStart(9)} ${t.best.toFixed(1).padStart(8)} ${(megapixels / (t.median / 1000)).toFixed(1).padStart(10)}        ${ratio}`,
    );
  }
}

console.log(`node ${process.version}, ${cpus()[0]?.model ?? 'cpu'} × ${cpus().length}, sharp uses libvips threads (concurrency ${sharp.concurrency()})`);
await table(`encode q${QUALITY} 4:2:0`, encoders);
await table('decode (baseline q75 4:2:0, fancy upsampling)', decoders);
