// PNG in and out, in plain TypeScript over fflate's inflate/deflate, so the same code runs in Node and in a
// browser. The header is read and the pixel limit checked before anything is inflated, and inflation writes into
// a buffer of exactly the size the header implies, so a small file cannot make us allocate more than that.
import { unzlibSync, zlibSync } from 'fflate';
import { ImageIoError } from './errors.js';
import type { RawImage } from '@codiff/jpeg-codec';

const SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

export const isPng = (bytes: Uint8Array): boolean => bytes.length >= 8 && SIGNATURE.every((b, i) => bytes[i] === b);

export interface PngHeader {
  readonly width: number;
  readonly height: number;
  readonly bitDepth: 1 | 2 | 4 | 8 | 16;
  /** 0 grey, 2 RGB, 3 palette, 4 grey + alpha, 6 RGBA. */
  readonly colorType: 0 | 2 | 3 | 4 | 6;
  readonly interlaced: boolean;
}

const DEPTHS: Record<number, readonly number[]> = { 0: [1, 2, 4, 8, 16], 2: [8, 16], 3: [1, 2, 4, 8], 4: [8, 16], 6: [8, 16] };
const SAMPLES: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };

let crcTable: Uint32Array | undefined;
function crc32(bytes: Uint8Array, start: number, end: number): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let c = 0xffffffff;
  for (let i = start; i < end; i++) c = crcTable[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

interface Chunk {
  readonly type: string;
  readonly data: Uint8Array;
}

/** The chunks up to IEND (or the end of the data), each checked for length and CRC. */
function* chunks(bytes: Uint8Array): Generator<Chunk> {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = 8;
  while (pos < bytes.length) {
    if (pos + 12 > bytes.length) throw new ImageIoError('TRUNCATED', 'the PNG data ends inside a chunk header');
    const length = view.getUint32(pos);
    const type = String.fromCharCode(...bytes.subarray(pos + 4, pos + 8));
    if (!/^[A-Za-z]{4}$/.test(type)) throw new ImageIoError('CORRUPT', `the PNG is damaged (bad chunk name at byte ${pos + 4})`);
    if (pos + 12 + length > bytes.length) throw new ImageIoError('TRUNCATED', `the PNG data ends inside its ${type} chunk`);
    if (crc32(bytes, pos + 4, pos + 8 + length) !== view.getUint32(pos + 8 + length)) {
      throw new ImageIoError('CORRUPT', `the PNG is damaged (checksum mismatch in its ${type} chunk)`);
    }
    yield { type, data: bytes.subarray(pos + 8, pos + 8 + length) };
    if (type === 'IEND') return;
    pos += 12 + length;
  }
}

/** The IHDR fields, validated; reads only the first 33 bytes. */
export function readPngHeader(bytes: Uint8Array): PngHeader {
  if (!isPng(bytes)) throw new ImageIoError('NOT_AN_IMAGE', 'not a PNG file');
  if (bytes.length < 33) throw new ImageIoError('TRUNCATED', 'the PNG ends before its header is complete');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(8) !== 13 || String.fromCharCode(...bytes.subarray(12, 16)) !== 'IHDR') {
    throw new ImageIoError('CORRUPT', 'the PNG does not start with its header chunk (IHDR)');
  }
  const width = view.getUint32(16);
  const height = view.getUint32(20);
  const [bitDepth, colorType, compression, filter, interlace] = bytes.subarray(24, 29);
  if (width === 0 || height === 0 || width > 0x7fffffff || height > 0x7fffffff) {
    throw new ImageIoError('CORRUPT', `the PNG header gives an impossible size ${width}×${height}`);
  }
  if (!DEPTHS[colorType]?.includes(bitDepth)) {
    throw new ImageIoError('UNSUPPORTED', `the PNG header gives colour type ${colorType} with ${bitDepth}-bit samples, which PNG does not define`);
  }
  if (compression !== 0 || filter !== 0 || interlace > 1) throw new ImageIoError('UNSUPPORTED', 'the PNG uses an unknown compression, filter or interlace method');
  return { width, height, bitDepth: bitDepth as PngHeader['bitDepth'], colorType: colorType as PngHeader['colorType'], interlaced: interlace === 1 };
}

/** Adam7 passes: x0, y0, dx, dy. */
const ADAM7 = [
  [0, 0, 8, 8],
  [4, 0, 8, 8],
  [0, 4, 4, 8],
  [2, 0, 4, 4],
  [0, 2, 2, 4],
  [1, 0, 2, 2],
  [0, 1, 1, 2],
] as const;

interface Pass {
  readonly x0: number;
  readonly y0: number;
  readonly dx: number;
  readonly dy: number;
  readonly width: number;
  readonly height: number;
}

function passes(h: PngHeader): Pass[] {
  if (!h.interlaced) return [{ x0: 0, y0: 0, dx: 1, dy: 1, width: h.width, height: h.height }];
  return ADAM7.map(([x0, y0, dx, dy]) => ({
    x0,
    y0,
    dx,
    dy,
    width: Math.max(0, Math.ceil((h.width - x0) / dx)),
    height: Math.max(0, Math.ceil((h.height - y0) / dy)),
  })).filter((p) => p.width > 0 && p.height > 0);
}

const rowBytes = (width: number, h: PngHeader) => Math.ceil((width * SAMPLES[h.colorType] * h.bitDepth) / 8);

/** Undo the per-row filters of one pass in place; `at` is where the pass's first filter byte is. */
function unfilter(raw: Uint8Array, at: number, rows: number, stride: number, bpp: number): void {
  for (let y = 0; y < rows; y++) {
    const row = at + y * (stride + 1);
    const kind = raw[row];
    const cur = row + 1;
    const prev = y === 0 ? -1 : cur - stride - 1;
    switch (kind) {
      case 0:
        break;
      case 1:
        for (let i = bpp; i < stride; i++) raw[cur + i] = (raw[cur + i] + raw[cur + i - bpp]) & 0xff;
        break;
      case 2:
        if (prev >= 0) for (let i = 0; i < stride; i++) raw[cur + i] = (raw[cur + i] + raw[prev + i]) & 0xff;
        break;
      case 3:
        for (let i = 0; i < stride; i++) {
          const left = i >= bpp ? raw[cur + i - bpp] : 0;
          const up = prev >= 0 ? raw[prev + i] : 0;
          raw[cur + i] = (raw[cur + i] + ((left + up) >> 1)) & 0xff;
        }
        break;
      case 4:
        for (let i = 0; i < stride; i++) {
          const a = i >= bpp ? raw[cur + i - bpp] : 0;
          const b = prev >= 0 ? raw[prev + i] : 0;
          const c = i >= bpp && prev >= 0 ? raw[prev + i - bpp] : 0;
          const p = a + b - c;
          const pa = Math.abs(p - a);
          const pb = Math.abs(p - b);
          const pc = Math.abs(p - c);
          raw[cur + i] = (raw[cur + i] + (pa <= pb && pa <= pc ? a : pb <= pc ? b : c)) & 0xff;
        }
        break;
      default:
        throw new ImageIoError('CORRUPT', `the PNG is damaged (unknown row filter ${kind})`);
    }
  }
}

export interface PngDecodeOptions {
  /** Refuse images with more pixels than this, from the header, before inflating. */
  readonly maxPixels: number;
}

/**
 * Decode a PNG into 8-bit grey (colour types 0 and 4) or RGB (2, 3, 6). Alpha is dropped as PIL's convert('RGB')
 * drops it; 16-bit samples are rounded to 8 bits; palettes are expanded. Memory: the inflated scanlines (samples ×
 * bit depth per pixel) plus the output, which for 8-bit grey/RGB is the same buffer.
 */
export function decodePng(bytes: Uint8Array, options: PngDecodeOptions): RawImage {
  const h = readPngHeader(bytes);
  const pixels = h.width * h.height;
  if (pixels > options.maxPixels) {
    throw new ImageIoError('TOO_LARGE', `the PNG is ${h.width}×${h.height} = ${pixels} pixels, over the limit of ${options.maxPixels}`);
  }
  let palette: Uint8Array | undefined;
  const idat: Uint8Array[] = [];
  let ended = false;
  for (const chunk of chunks(bytes)) {
    if (chunk.type === 'PLTE') palette = chunk.data;
    else if (chunk.type === 'IDAT') idat.push(chunk.data);
    else if (chunk.type === 'IEND') ended = true;
  }
  if (idat.length === 0) throw new ImageIoError(ended ? 'CORRUPT' : 'TRUNCATED', 'the PNG has no image data (IDAT)');
  if (h.colorType === 3 && (!palette || palette.length % 3 !== 0 || palette.length === 0)) {
    throw new ImageIoError('CORRUPT', 'the PNG is a palette image without a valid palette (PLTE)');
  }
  const layout = passes(h);
  const expected = layout.reduce((n, p) => n + p.height * (rowBytes(p.width, h) + 1), 0);
  const compressed = idat.length === 1 ? idat[0] : concat(idat);
  let raw: Uint8Array;
  try {
    raw = unzlibSync(compressed, { out: new Uint8Array(expected) });
  } catch (e) {
    throw new ImageIoError('CORRUPT', `the PNG's compressed data is damaged (${(e as Error).message})`);
  }
  if (raw.length < expected) throw new ImageIoError('TRUNCATED', `the PNG's image data ends early (${raw.length} of ${expected} bytes)`);
  const bpp = Math.max(1, (SAMPLES[h.colorType] * h.bitDepth) >> 3);
  let at = 0;
  for (const p of layout) {
    unfilter(raw, at, p.height, rowBytes(p.width, h), bpp);
    at += p.height * (rowBytes(p.width, h) + 1);
  }
  return toImage8(raw, h, layout, palette);
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Unfiltered scanlines → interleaved 8-bit grey or RGB. */
function toImage8(raw: Uint8Array, h: PngHeader, layout: Pass[], palette: Uint8Array | undefined): RawImage {
  const { width, height, bitDepth, colorType } = h;
  const grey = colorType === 0 || colorType === 4;
  const channels = grey ? 1 : 3;
  // 8-bit grey and RGB without interlacing: drop the filter bytes in place, no second buffer.
  if (bitDepth === 8 && (colorType === 0 || colorType === 2) && !h.interlaced) {
    const stride = width * channels;
    for (let y = 0; y < height; y++) raw.copyWithin(y * stride, y * (stride + 1) + 1, (y + 1) * (stride + 1));
    return { width, height, channels, data: raw.subarray(0, stride * height) };
  }
  const out = new Uint8Array(width * height * channels);
  const samples = SAMPLES[colorType];
  const maxSample = (1 << bitDepth) - 1;
  const sample = (row: number, i: number): number => {
    if (bitDepth === 8) return raw[row + i];
    if (bitDepth === 16) return raw[row + 2 * i] * 256 + raw[row + 2 * i + 1];
    const bit = i * bitDepth;
    return (raw[row + (bit >> 3)] >> (8 - bitDepth - (bit & 7))) & maxSample;
  };
  const to8 = (v: number) => (bitDepth === 8 ? v : bitDepth === 16 ? Math.round((v * 255) / 65535) : Math.round((v * 255) / maxSample));
  let at = 0;
  for (const p of layout) {
    const stride = rowBytes(p.width, h);
    for (let py = 0; py < p.height; py++) {
      const row = at + py * (stride + 1) + 1;
      const y = p.y0 + py * p.dy;
      for (let px = 0; px < p.width; px++) {
        const o = (y * width + p.x0 + px * p.dx) * channels;
        if (colorType === 3) {
          const index = sample(row, px);
          if (3 * index + 2 >= palette!.length) throw new ImageIoError('CORRUPT', `the PNG uses palette entry ${index}, past its palette`);
          out[o] = palette![3 * index];
          out[o + 1] = palette![3 * index + 1];
          out[o + 2] = palette![3 * index + 2];
        } else if (grey) out[o] = to8(sample(row, px * samples));
        else for (let c = 0; c < 3; c++) out[o + c] = to8(sample(row, px * samples + c));
      }
    }
    at += p.height * (stride + 1);
  }
  return { width, height, channels, data: out };
}

/**
 * Encode 8-bit grey (1 channel), RGB (3) or RGBA (4) as a PNG: per row the filter with the smallest sum of
 * absolute differences (libpng's heuristic), zlib level 6.
 */
export function encodePng(image: RawImage): Uint8Array {
  const { width, height, channels, data } = image;
  const colorType = channels === 1 ? 0 : channels === 3 ? 2 : 6;
  const stride = width * channels;
  const filtered = new Uint8Array(height * (stride + 1));
  const candidates = Array.from({ length: 5 }, () => new Uint8Array(stride));
  for (let y = 0; y < height; y++) {
    const cur = y * stride;
    const prev = cur - stride;
    let best = 0;
    let bestCost = Infinity;
    for (let f = 0; f < 5; f++) {
      const out = candidates[f];
      let cost = 0;
      for (let i = 0; i < stride; i++) {
        const a = i >= channels ? data[cur + i - channels] : 0;
        const b = y > 0 ? data[prev + i] : 0;
        const c = i >= channels && y > 0 ? data[prev + i - channels] : 0;
        let predicted = 0;
        if (f === 1) predicted = a;
        else if (f === 2) predicted = b;
        else if (f === 3) predicted = (a + b) >> 1;
        else if (f === 4) {
          const p = a + b - c;
          const pa = Math.abs(p - a);
          const pb = Math.abs(p - b);
          const pc = Math.abs(p - c);
          predicted = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
        }
        const v = (data[cur + i] - predicted) & 0xff;
        out[i] = v;
        cost += v < 128 ? v : 256 - v;
      }
      if (cost < bestCost) (bestCost = cost), (best = f);
    }
    filtered[y * (stride + 1)] = best;
    filtered.set(candidates[best], y * (stride + 1) + 1);
  }
  const header = new Uint8Array(13);
  const hv = new DataView(header.buffer);
  hv.setUint32(0, width);
  hv.setUint32(4, height);
  header.set([8, colorType, 0, 0, 0], 8);
  const parts = [Uint8Array.from(SIGNATURE), chunk('IHDR', header), chunk('IDAT', zlibSync(filtered, { level: 6 })), chunk('IEND', new Uint8Array(0))];
  return concat(parts);
}

function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(data, 8);
  view.setUint32(8 + data.length, crc32(out, 4, 8 + data.length));
  return out;
}
