import { rgbToY } from './color.js';
import { decodeJpeg } from './decoder.js';
import { encodeJpeg } from './encoder.js';
import { JpegError } from './errors.js';
import { checkRawImage, type RawImage, type Subsampling } from './image.js';

export interface DegradeOptions {
  /** IJG quality factor 1..100. */
  quality: number;
  /** Chroma subsampling of the JPEG (default 4:2:0, as PIL/OpenCV). */
  subsampling?: Subsampling;
}

/**
 * JPEG round trip — encode at `quality`, decode — exactly as PIL/OpenCV (libjpeg-turbo) do it. RGB(A) in gives
 * RGB out; gray in gives gray out.
 */
export function degrade(image: RawImage, options: DegradeOptions): RawImage {
  const jpeg = encodeJpeg(image, { quality: options.quality, subsampling: options.subsampling });
  const { width, height, channels, data } = decodeJpeg(jpeg, { output: 'native' });
  return { width, height, channels, data };
}

export interface DoubleCompressOptions {
  /**
   * Rows and columns cropped from the top-left after the first compression (default 0 = aligned). 8 keeps the
   * luma 8×8 grid (with 4:2:0 the chroma grid moves by half a block); any value not a multiple of 8, e.g. 4,
   * misaligns both grids — the usual "non-aligned double JPEG".
   */
  shift?: number;
  subsampling?: Subsampling;
}

/** Double JPEG compression: degrade at q1, crop `shift` rows/cols, degrade at q2. */
export function doubleCompress(image: RawImage, q1: number, q2: number, options: DoubleCompressOptions = {}): RawImage {
  const shift = options.shift ?? 0;
  if (!Number.isInteger(shift) || shift < 0 || shift >= image.width || shift >= image.height) {
    throw new JpegError('INVALID_ARGUMENT', `shift must be an integer 0..${Math.min(image.width, image.height) - 1}, got ${shift}`);
  }
  const first = degrade(image, { quality: q1, subsampling: options.subsampling });
  const cropped = crop(first, shift, shift, first.width - shift, first.height - shift);
  return degrade(cropped, { quality: q2, subsampling: options.subsampling });
}

/**
 * The grey version of an RGB(A) image: libjpeg's luma (BT.601 in 16-bit fixed point), the Y a colour JPEG encodes and
 * the value PIL's `convert('L')` gives. A grey image comes back as it is.
 */
export function toGrey(image: RawImage): RawImage {
  checkRawImage(image);
  const { width, height, channels: c } = image;
  if (c === 1) return image;
  const data = new Uint8Array(width * height);
  for (let i = 0; i < data.length; i++) data[i] = rgbToY(image.data[i * c], image.data[i * c + 1], image.data[i * c + 2]);
  return { width, height, channels: 1, data };
}

/** The `width`×`height` window of `image` whose top-left pixel is (left, top). */
export function crop(image: RawImage, left: number, top: number, width: number, height: number): RawImage {
  checkRawImage(image);
  const ok = [left, top, width, height].every(Number.isInteger) && left >= 0 && top >= 0 && width >= 1 && height >= 1;
  if (!ok || left + width > image.width || top + height > image.height) {
    throw new JpegError('INVALID_ARGUMENT', `crop ${width}×${height}+${left}+${top} is outside the ${image.width}×${image.height} image`);
  }
  const c = image.channels;
  const data = new Uint8Array(width * height * c);
  for (let y = 0; y < height; y++) {
    const from = ((top + y) * image.width + left) * c;
    data.set(image.data.subarray(from, from + width * c), y * width * c);
  }
  return { width, height, channels: c, data };
}
