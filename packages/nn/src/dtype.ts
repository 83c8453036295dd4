import { NnError } from './errors.js';

/**
 * safetensors dtypes we read, all converted to float32 on load, and their sizes in bytes. Integers are read too
 * (exact up to 2^24), since PyTorch state dicts carry them (BatchNorm's `num_batches_tracked` is I64).
 */
export const DTYPE_BYTES = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 } as const;
export type StoredDtype = keyof typeof DTYPE_BYTES;
const FLOAT_DTYPES = ['F64', 'F32', 'F16', 'BF16'] as const;
/** The floating-point dtypes, which we also write. */
export type FloatDtype = (typeof FLOAT_DTYPES)[number];

export function isStoredDtype(d: string): d is StoredDtype {
  return Object.hasOwn(DTYPE_BYTES, d);
}

export function isFloatDtype(d: string): d is FloatDtype {
  return (FLOAT_DTYPES as readonly string[]).includes(d);
}

/** IEEE half → float, exact (every half is representable as a float). */
export function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** float → IEEE half, round to nearest even (as torch's .half()). */
export function floatToHalf(v: number): number {
  f32[0] = v;
  const x = u32[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    let r = mant >> shift;
    const rest = mant & ((1 << shift) - 1);
    if (rest > half || (rest === half && r & 1)) r++;
    return sign | r;
  }
  let r = mant >> 13;
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && r & 1)) {
    r++;
    if (r === 0x400) {
      r = 0;
      e++;
      if (e >= 31) return sign | 0x7c00;
    }
  }
  return sign | (e << 10) | r;
}

const bf16Bits = new Uint32Array(1);
const bf16Value = new Float32Array(bf16Bits.buffer);
function bf16ToFloat(h: number): number {
  bf16Bits[0] = h << 16;
  return bf16Value[0];
}

/** One little-endian element of each stored dtype as a number, read at a byte offset (safetensors and torch storages). */
export const READ_ELEMENT: Record<StoredDtype, (view: DataView, byteOffset: number) => number> = {
  F64: (v, o) => v.getFloat64(o, true),
  F32: (v, o) => v.getFloat32(o, true),
  F16: (v, o) => halfToFloat(v.getUint16(o, true)),
  BF16: (v, o) => bf16ToFloat(v.getUint16(o, true)),
  I64: (v, o) => Number(v.getBigInt64(o, true)),
  I32: (v, o) => v.getInt32(o, true),
  I16: (v, o) => v.getInt16(o, true),
  I8: (v, o) => v.getInt8(o),
  U8: (v, o) => v.getUint8(o),
  BOOL: (v, o) => v.getUint8(o),
};

/** Decode little-endian raw tensor bytes of `dtype` to float32. */
export function toFloat32(bytes: Uint8Array, dtype: StoredDtype): Float32Array {
  const size = DTYPE_BYTES[dtype];
  const n = bytes.length / size;
  if (!Number.isInteger(n)) throw new NnError(`${bytes.length} bytes is not a whole number of ${dtype} values`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const read = READ_ELEMENT[dtype];
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = read(view, size * i);
  return out;
}

/** Encode float32 values as little-endian `dtype` bytes. BF16 rounds to nearest even. */
export function fromFloat32(values: Float32Array, dtype: FloatDtype): Uint8Array {
  const out = new Uint8Array(values.length * DTYPE_BYTES[dtype]);
  const view = new DataView(out.buffer);
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    switch (dtype) {
      case 'F32':
        view.setFloat32(4 * i, v, true);
        break;
      case 'F64':
        view.setFloat64(8 * i, v, true);
        break;
      case 'F16':
        view.setUint16(2 * i, floatToHalf(v), true);
        break;
      case 'BF16': {
        f32[0] = v;
        const x = u32[0];
        const rounded = Number.isNaN(v) ? (x >>> 16) | 0x40 : (x + 0x7fff + ((x >>> 16) & 1)) >>> 16;
        view.setUint16(2 * i, rounded & 0xffff, true);
        break;
      }
    }
  }
  return out;
}
