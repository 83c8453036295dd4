// The CLI's side of reading and writing: everything goes through @codiff/image-io, so the pixel limit, the
// plain-words errors and the atomic, never-onto-an-input writes are the same for every command.
import { extname } from 'node:path';
import { DEFAULT_MAX_PIXELS, type DecodedImage } from '@codiff/image-io';
import { readImageFile, writeFileAtomic } from '@codiff/image-io/node';

/** An expected failure of a command: printed as one `codiff: …` line, exit code 1. */
export class CliError extends Error {}

export { DEFAULT_MAX_PIXELS };

export interface ReadImageOptions {
  readonly maxPixels: number;
  /** 'rgb' expands grey images to three channels. */
  readonly channels?: 'native' | 'rgb';
}

export const readImage = (path: string, options: ReadImageOptions): Promise<DecodedImage> =>
  readImageFile(path, { maxPixels: options.maxPixels, channels: options.channels ?? 'native' });

/** Write a command's result atomically, refusing to replace any of `inputs`. */
export const writeOutput = (path: string, bytes: Uint8Array, inputs: readonly string[]): Promise<void> =>
  writeFileAtomic(path, bytes, { inputs });

export function outputKind(path: string): 'jpeg' | 'png' {
  const ext = extname(path).toLowerCase();
  if (ext === '.jpg' || ext === '.jpeg') return 'jpeg';
  if (ext === '.png') return 'png';
  throw new CliError(`${path}: output must end in .jpg, .jpeg or .png`);
}
