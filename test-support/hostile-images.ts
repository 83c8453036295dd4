// Image files that stress readers, made on the fly so no multi-megabyte fixture is checked in.
import { deflateSync } from 'node:zlib';
import { encodeJpeg } from '@codiff/jpeg-codec';

function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  }
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Uint8Array): Buffer {
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  body.copy(out, 4);
  out.writeUInt32BE(crc32(body), 8 + data.length);
  return out;
}

function ihdr(width: number, height: number): Buffer {
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header.set([8, 2, 0, 0, 0], 8);
  return chunk('IHDR', header);
}

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** A valid RGB PNG of one colour: tiny on disk (deflate of repeated rows), `width × height` pixels decoded. */
export function flatPng(width: number, height: number, rgb: readonly [number, number, number] = [200, 120, 40]): Uint8Array {
  const row = 1 + 3 * width;
  const raw = Buffer.alloc(row * height);
  for (let y = 0; y < height; y++) {
    raw[y * row] = 1; // Sub: every pixel after the first repeats the one to its left
    raw.set(rgb, y * row + 1);
  }
  return Buffer.concat([SIGNATURE, ihdr(width, height), chunk('IDAT', deflateSync(raw, { level: 9 })), chunk('IEND', new Uint8Array(0))]);
}

/** A PNG whose header claims `width × height` but whose data is a few bytes: only a header check can refuse it fast. */
export function pngHeaderOnly(width: number, height: number): Uint8Array {
  return Buffer.concat([SIGNATURE, ihdr(width, height), chunk('IDAT', deflateSync(Buffer.alloc(64))), chunk('IEND', new Uint8Array(0))]);
}

/** A real 16×16 JPEG whose SOF0 is patched to claim `width × height`. */
export function jpegHeaderOnly(width: number, height: number): Uint8Array {
  const jpeg = encodeJpeg({ width: 16, height: 16, channels: 3, data: new Uint8Array(768).fill(128) }, { quality: 75 });
  for (let i = 2; i + 9 < jpeg.length; i++) {
    if (jpeg[i] === 0xff && jpeg[i + 1] === 0xc0) {
      jpeg[i + 5] = height >> 8;
      jpeg[i + 6] = height & 0xff;
      jpeg[i + 7] = width >> 8;
      jpeg[i + 8] = width & 0xff;
      return jpeg;
    }
  }
  throw new Error('no SOF0 marker');
}
