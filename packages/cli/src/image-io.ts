import { readFile, writeFile, mkdir } from 'node:fs/promises';
import { dirname, extname } from 'node:path';
import { decodeJpeg, type RawImage } from '@codiff/jpeg-codec';
import { PNG } from 'pngjs';

export class CliError extends Error {}

const PNG_MAGIC = [0x89, 0x50, 0x4e, 0x47];

export async function readBytes(path: string): Promise<Uint8Array> {
  try {
    return new Uint8Array(await readFile(path));
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new CliError(err.code === 'ENOENT' ? `${path}: no such file` : `${path}: ${err.message}`);
  }
}

export function isJpeg(bytes: Uint8Array): boolean {
  return bytes[0] === 0xff && bytes[1] === 0xd8;
}

/** Decode a PNG (any bit depth / colour type pngjs reads) or JPEG file into 8-bit RGB. */
export async function readImage(path: string): Promise<RawImage> {
  const bytes = await readBytes(path);
  if (isJpeg(bytes)) {
    const { width, height, data } = decodeJpeg(bytes);
    return { width, height, channels: 3, data };
  }
  if (!PNG_MAGIC.every((b, i) => bytes[i] === b)) throw new CliError(`${path}: not a PNG or JPEG file`);
  let png: PNG;
  try {
    png = PNG.sync.read(Buffer.from(bytes));
  } catch (e) {
    throw new CliError(`${path}: invalid PNG (${(e as Error).message})`);
  }
  const rgb = new Uint8Array(png.width * png.height * 3);
  for (let i = 0, j = 0; i < rgb.length; i += 3, j += 4) {
    rgb[i] = png.data[j]!;
    rgb[i + 1] = png.data[j + 1]!;
    rgb[i + 2] = png.data[j + 2]!;
  }
  return { width: png.width, height: png.height, channels: 3, data: rgb };
}

export function encodePng(image: RawImage): Uint8Array {
  const png = new PNG({ width: image.width, height: image.height });
  const c = image.channels;
  for (let i = 0; i < image.width * image.height; i++) {
    const v = image.data;
    png.data[4 * i] = v[c * i]!;
    png.data[4 * i + 1] = v[c * i + (c >= 3 ? 1 : 0)]!;
    png.data[4 * i + 2] = v[c * i + (c >= 3 ? 2 : 0)]!;
    png.data[4 * i + 3] = 255;
  }
  return new Uint8Array(PNG.sync.write(png));
}

export async function writeOutput(path: string, bytes: Uint8Array): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, bytes);
}

export function outputKind(path: string): 'jpeg' | 'png' {
  const ext = extname(path).toLowerCase();
  if (ext === '.jpg' || ext === '.jpeg') return 'jpeg';
  if (ext === '.png') return 'png';
  throw new CliError(`${path}: output must end in .jpg, .jpeg or .png`);
}
