/** Header segments of a JPEG up to SOS: marker code, offset of the 0xFF, total length including the marker. */
export function headerSegments(jpeg: Uint8Array): { marker: number; offset: number; size: number }[] {
  const out: { marker: number; offset: number; size: number }[] = [];
  let p = 2;
  while (p + 4 <= jpeg.length) {
    const marker = jpeg[p + 1];
    const size = 2 + ((jpeg[p + 2] << 8) | jpeg[p + 3]);
    out.push({ marker, offset: p, size });
    if (marker === 0xda) break;
    p += size;
  }
  return out;
}

export function segment(jpeg: Uint8Array, marker: number) {
  const s = headerSegments(jpeg).find((x) => x.marker === marker);
  if (!s) throw new Error(`no marker 0x${marker.toString(16)}`);
  return s;
}

/** `jpeg` with the bytes [from, to) replaced by `insert`. */
export function splice(jpeg: Uint8Array, from: number, to: number, insert: ArrayLike<number> = []): Uint8Array {
  const out = new Uint8Array(jpeg.length - (to - from) + insert.length);
  out.set(jpeg.subarray(0, from));
  out.set(insert, from);
  out.set(jpeg.subarray(to), from + insert.length);
  return out;
}

/** An APPn segment with the given payload. */
export function appSegment(n: number, payload: ArrayLike<number>): Uint8Array {
  const out = new Uint8Array(4 + payload.length);
  out[0] = 0xff;
  out[1] = 0xe0 + n;
  out[2] = (payload.length + 2) >> 8;
  out[3] = (payload.length + 2) & 0xff;
  out.set(payload, 4);
  return out;
}
