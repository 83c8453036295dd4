import { execFileSync, spawnSync } from 'node:child_process';
import type { RawImage } from '../src/index.js';

/** Debian's libjpeg-turbo-progs (cjpeg/djpeg); `npm test` installs it when it can (scripts/ensure-install.mjs). */
export const hasLibjpegTools = ['cjpeg', 'djpeg'].every((t) => spawnSync(t, ['-version']).status === 0);

export function toPnm(image: RawImage): Uint8Array {
  const gray = image.channels === 1;
  const header = new TextEncoder().encode(`${gray ? 'P5' : 'P6'}\n${image.width} ${image.height}\n255\n`);
  const out = new Uint8Array(header.length + image.data.length);
  out.set(header);
  out.set(image.data, header.length);
  return out;
}

export function cjpeg(image: RawImage, args: string[]): Uint8Array {
  return new Uint8Array(execFileSync('cjpeg', args, { input: toPnm(image), maxBuffer: 1 << 28, stdio: ['pipe', 'pipe', 'ignore'] }));
}

/** djpeg's decode as RGB (grayscale JPEGs are expanded to RGB so they compare with decodeJpeg's default). */
export function djpeg(jpeg: Uint8Array): RawImage {
  const pnm = new Uint8Array(execFileSync('djpeg', ['-pnm'], { input: jpeg, maxBuffer: 1 << 28 }));
  // Header: magic, width, height, maxval, each followed by one whitespace byte.
  let p = 0;
  const fields: string[] = [];
  while (fields.length < 4) {
    while (pnm[p] === 0x20 || pnm[p] === 0x0a) p++;
    let s = '';
    while (pnm[p] !== 0x20 && pnm[p] !== 0x0a) s += String.fromCharCode(pnm[p++]);
    fields.push(s);
  }
  p++;
  const [magic, w, h] = [fields[0], Number(fields[1]), Number(fields[2])];
  const raw = pnm.subarray(p);
  if (magic === 'P6') return { width: w, height: h, channels: 3, data: raw };
  const data = new Uint8Array(w * h * 3);
  for (let i = 0; i < w * h; i++) data[3 * i] = data[3 * i + 1] = data[3 * i + 2] = raw[i];
  return { width: w, height: h, channels: 3, data };
}
