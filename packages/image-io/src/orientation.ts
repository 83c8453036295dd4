import type { RawImage } from '@codiff/jpeg-codec';

/**
 * The pixels as a viewer shows them for EXIF orientation 1..8: 2 mirror, 3 rotate 180°, 4 flip, 5 transpose,
 * 6 rotate 90° clockwise, 7 transverse, 8 rotate 90° counter-clockwise.
 */
export function orient(image: RawImage, orientation: number): RawImage {
  const { width: w, height: h, channels: c, data } = image;
  if (!Number.isInteger(orientation) || orientation < 1 || orientation > 8) throw new RangeError(`EXIF orientation must be 1..8, got ${orientation}`);
  if (orientation === 1) return image;
  const swap = orientation >= 5;
  const ow = swap ? h : w;
  const oh = swap ? w : h;
  const out = new Uint8Array(data.length);
  for (let y = 0; y < oh; y++) {
    for (let x = 0; x < ow; x++) {
      // Source pixel (sx, sy) of output pixel (x, y).
      let sx: number, sy: number;
      switch (orientation) {
        case 2: (sx = w - 1 - x), (sy = y); break;
        case 3: (sx = w - 1 - x), (sy = h - 1 - y); break;
        case 4: (sx = x), (sy = h - 1 - y); break;
        case 5: (sx = y), (sy = x); break;
        case 6: (sx = y), (sy = h - 1 - x); break;
        case 7: (sx = w - 1 - y), (sy = h - 1 - x); break;
        default: (sx = w - 1 - y), (sy = x); break;
      }
      const s = (sy * w + sx) * c;
      const o = (y * ow + x) * c;
      for (let k = 0; k < c; k++) out[o + k] = data[s + k];
    }
  }
  return { width: ow, height: oh, channels: c, data: out };
}
