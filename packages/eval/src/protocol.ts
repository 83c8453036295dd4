import { resizeToMultipleOf8 } from '@codiff/image-io';
import { decodeJpeg, encodeJpeg, type RawImage } from '@codiff/jpeg-codec';

/**
 * How ground truth is prepared. `codiff`: the official test script's PIL LANCZOS resize to the largest multiple of
 * 8 not above each side (so the JPEG grid and the model's padding line up). `full`: the image as it is, as the
 * PSNR tables of the JPEG-artifact literature (ARCNN, DnCNN, FBCNN) use it.
 */
export type Protocol = 'codiff' | 'full';

export function groundTruth(image: RawImage, protocol: Protocol): RawImage {
  return protocol === 'codiff' ? resizeToMultipleOf8(image) : image;
}

export interface Compressed {
  readonly jpeg: Uint8Array;
  readonly decoded: RawImage;
}

/** JPEG as PIL writes it at this quality (grey: one component; colour: 4:2:0), and its decoded pixels. */
export function compress(image: RawImage, quality: number): Compressed {
  const jpeg = encodeJpeg(image, { quality, subsampling: '4:2:0' });
  return { jpeg, decoded: decodeJpeg(jpeg, { output: 'native' }) };
}
