import { JpegError } from './errors.js';

/** Interleaved 8-bit pixels, row-major. `channels` 1 = gray, 3 = RGB, 4 = RGBA (alpha ignored on encode). */
export interface RawImage {
  readonly width: number;
  readonly height: number;
  readonly channels: 1 | 3 | 4;
  readonly data: Uint8Array | Uint8ClampedArray;
}

/** Chroma subsampling as the usual J:a:b name. */
export type Subsampling = '4:4:4' | '4:2:2' | '4:2:0' | '4:4:0' | '4:1:1';

/** Luma sampling factors (h, v) for each subsampling; chroma is always 1×1. */
export const LUMA_SAMPLING: Record<Subsampling, readonly [number, number]> = {
  '4:4:4': [1, 1],
  '4:2:2': [2, 1],
  '4:2:0': [2, 2],
  '4:4:0': [1, 2],
  '4:1:1': [4, 1],
};

/** JPEG's own dimension limit (16-bit fields in SOF). */
export const MAX_DIMENSION = 65535;

export function checkRawImage(image: RawImage, what = 'image'): void {
  const { width, height, channels, data } = image;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new JpegError('INVALID_ARGUMENT', `${what}: width and height must be positive integers, got ${width}×${height}`);
  }
  if (width > MAX_DIMENSION || height > MAX_DIMENSION) {
    throw new JpegError('INVALID_ARGUMENT', `${what}: ${width}×${height} exceeds JPEG's ${MAX_DIMENSION} pixel limit per side`);
  }
  if (channels !== 1 && channels !== 3 && channels !== 4) {
    throw new JpegError('INVALID_ARGUMENT', `${what}: channels must be 1, 3 or 4, got ${String(channels)}`);
  }
  if (!(data instanceof Uint8Array || data instanceof Uint8ClampedArray)) {
    throw new JpegError('INVALID_ARGUMENT', `${what}: data must be a Uint8Array or Uint8ClampedArray`);
  }
  if (data.length !== width * height * channels) {
    throw new JpegError(
      'INVALID_ARGUMENT',
      `${what}: data has ${data.length} bytes, expected ${width}×${height}×${channels} = ${width * height * channels}`,
    );
  }
}
