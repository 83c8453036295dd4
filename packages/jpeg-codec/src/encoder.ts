import { rgbToCb, rgbToCr, rgbToY } from './color.js';
import { forwardDctQuantize, quantDivisors, type QuantDivisors } from './dct.js';
import { JpegError } from './errors.js';
import { encodingTable, optimalTable, type EncodingTable } from './huffman.js';
import { checkRawImage, LUMA_SAMPLING, type RawImage, type Subsampling } from './image.js';
import {
  scaleQuantTable,
  STD_AC_CHROMINANCE,
  STD_AC_LUMINANCE,
  STD_CHROMINANCE_QUANT,
  STD_DC_CHROMINANCE,
  STD_DC_LUMINANCE,
  STD_LUMINANCE_QUANT,
  ZIGZAG_TO_NATURAL,
  type HuffmanSpec,
} from './tables.js';

export interface EncodeOptions {
  /** IJG quality factor 1..100 (default 75, as libjpeg). */
  quality?: number;
  /** Chroma subsampling (default 4:2:0, as PIL, OpenCV and cjpeg). Ignored for grayscale output. */
  subsampling?: Subsampling;
  /** Write a single-component (luma only) JPEG. Implied by 1-channel input. */
  grayscale?: boolean;
  /** Two-pass optimal Huffman tables (cjpeg -optimize, PIL optimize=True). Default false. */
  optimizeHuffman?: boolean;
  /** Restart marker every N MCUs (0 = none, default). */
  restartInterval?: number;
  /**
   * Clamp quantiser entries to 255 (default true, as PIL/OpenCV/`cjpeg -baseline`). With false, low qualities
   * produce 16-bit tables and an extended-sequential (SOF1) file, as plain `cjpeg` does.
   */
  forceBaseline?: boolean;
}

interface ComponentPlan {
  readonly id: number;
  readonly h: number;
  readonly v: number;
  readonly tableIndex: 0 | 1; // quant and Huffman table selector: luma 0, chroma 1
  readonly blocksWide: number; // real (non-dummy) blocks
  readonly blocksHigh: number;
  readonly plane: Uint8Array; // blocksWide*8 × (mcuRows*v*8) downsampled samples
  readonly stride: number;
}

/** Encode 8-bit pixels as a baseline JPEG, byte-identical to libjpeg-turbo with the same settings. */
export function encodeJpeg(image: RawImage, options: EncodeOptions = {}): Uint8Array {
  checkRawImage(image);
  const quality = options.quality ?? 75;
  if (!Number.isInteger(quality) || quality < 1 || quality > 100) {
    throw new JpegError('INVALID_ARGUMENT', `quality must be an integer 1..100, got ${quality}`);
  }
  const subsampling = options.subsampling ?? '4:2:0';
  if (!(subsampling in LUMA_SAMPLING)) {
    throw new JpegError('INVALID_ARGUMENT', `unknown subsampling '${String(subsampling)}'`);
  }
  const restartInterval = options.restartInterval ?? 0;
  if (!Number.isInteger(restartInterval) || restartInterval < 0 || restartInterval > 65535) {
    throw new JpegError('INVALID_ARGUMENT', `restartInterval must be an integer 0..65535, got ${restartInterval}`);
  }
  const forceBaseline = options.forceBaseline ?? true;
  const grayscale = options.grayscale === true || image.channels === 1;

  const quant = [
    scaleQuantTable(STD_LUMINANCE_QUANT, quality, forceBaseline),
    scaleQuantTable(STD_CHROMINANCE_QUANT, quality, forceBaseline),
  ] as const;
  const components = planComponents(image, grayscale ? null : LUMA_SAMPLING[subsampling]);
  const coefs = quantizedBlocks(components, [quantDivisors(quant[0]), quantDivisors(quant[1])]);

  const tablesUsed = grayscale ? 1 : 2;
  let dcSpecs: HuffmanSpec[] = [STD_DC_LUMINANCE, STD_DC_CHROMINANCE].slice(0, tablesUsed);
  let acSpecs: HuffmanSpec[] = [STD_AC_LUMINANCE, STD_AC_CHROMINANCE].slice(0, tablesUsed);
  if (options.optimizeHuffman) {
    const stats = symbolStatistics(components, coefs, restartInterval);
    dcSpecs = stats.dc.slice(0, tablesUsed).map(optimalTable);
    acSpecs = stats.ac.slice(0, tablesUsed).map(optimalTable);
  }

  const out = new ByteWriter(Math.max(1024, (image.width * image.height) >> 1));
  writeHeaders(out, image, components, quant.slice(0, tablesUsed), dcSpecs, acSpecs, restartInterval);
  entropyCode(out, components, coefs, dcSpecs.map(encodingTable), acSpecs.map(encodingTable), restartInterval);
  out.u16(0xffd9);
  return out.result();
}

/**
 * Colour-convert and downsample into per-component planes, padding edges exactly as libjpeg does
 * (jcprepct.c / jcsample.c): the full-resolution image is extended by repeating its last column and row;
 * downsampled rows past the last row group repeat the last downsampled row.
 */
function planComponents(image: RawImage, lumaSampling: readonly [number, number] | null): ComponentPlan[] {
  const { width, height, channels, data } = image;
  const [maxH, maxV] = lumaSampling ?? [1, 1];
  const specs = lumaSampling
    ? [
        { id: 1, h: maxH, v: maxV, tableIndex: 0 as const },
        { id: 2, h: 1, v: 1, tableIndex: 1 as const },
        { id: 3, h: 1, v: 1, tableIndex: 1 as const },
      ]
    : [{ id: 1, h: 1, v: 1, tableIndex: 0 as const }];
  const mcuRows = Math.ceil(height / (maxV * 8));
  const rowGroups = Math.ceil(height / maxV);

  // Full-resolution Y (and Cb, Cr) planes of the image itself.
  const n = width * height;
  const full = specs.map(() => new Uint8Array(n));
  const [yPlane, cbPlane, crPlane] = full;
  if (channels === 1) {
    yPlane!.set(data);
  } else {
    for (let i = 0, p = 0; i < n; i++, p += channels) {
      const r = data[p], g = data[p + 1], b = data[p + 2];
      yPlane![i] = rgbToY(r, g, b);
      if (cbPlane) {
        cbPlane[i] = rgbToCb(r, g, b);
        crPlane![i] = rgbToCr(r, g, b);
      }
    }
  }

  return specs.map((spec, ci) => {
    const fh = maxH / spec.h;
    const fv = maxV / spec.v;
    const blocksWide = Math.ceil(Math.ceil((width * spec.h) / maxH) / 8);
    const blocksHigh = Math.ceil(Math.ceil((height * spec.v) / maxV) / 8);
    const stride = blocksWide * 8;
    const rows = mcuRows * spec.v * 8;
    const realRows = rowGroups * spec.v; // rows produced from image data; the rest repeat the last one
    const plane = new Uint8Array(stride * rows);
    downsample(full[ci], width, height, plane, stride, Math.min(realRows, rows), fh, fv);
    for (let y = realRows; y < rows; y++) plane.copyWithin(y * stride, (realRows - 1) * stride, realRows * stride);
    return { ...spec, blocksWide, blocksHigh, plane, stride };
  });
}

/** jcsample.c: fullsize copy, h2v1 / h2v2 with alternating bias, generic box average otherwise. */
function downsample(
  src: Uint8Array, width: number, height: number,
  dst: Uint8Array, dstWidth: number, dstRows: number, fh: number, fv: number,
): void {
  const lastX = width - 1;
  const lastY = height - 1;
  const col = (x: number) => (x < lastX ? x : lastX);
  for (let y = 0; y < dstRows; y++) {
    const o = y * dstWidth;
    if (fh === 1 && fv === 1) {
      const row = src.subarray(Math.min(y, lastY) * width, Math.min(y, lastY) * width + width);
      if (dstWidth <= width) dst.set(row.subarray(0, dstWidth), o);
      else {
        dst.set(row, o);
        dst.fill(row[lastX], o + width, o + dstWidth);
      }
    } else if (fh === 2 && fv === 1) {
      const r = Math.min(y, lastY) * width;
      for (let x = 0, bias = 0; x < dstWidth; x++, bias ^= 1) {
        dst[o + x] = (src[r + col(2 * x)] + src[r + col(2 * x + 1)] + bias) >> 1;
      }
    } else if (fh === 2 && fv === 2) {
      const r0 = Math.min(2 * y, lastY) * width;
      const r1 = Math.min(2 * y + 1, lastY) * width;
      for (let x = 0, bias = 1; x < dstWidth; x++, bias ^= 3) {
        const x0 = col(2 * x), x1 = col(2 * x + 1);
        dst[o + x] = (src[r0 + x0] + src[r0 + x1] + src[r1 + x0] + src[r1 + x1] + bias) >> 2;
      }
    } else {
      const count = fh * fv;
      for (let x = 0; x < dstWidth; x++) {
        let sum = 0;
        for (let dy = 0; dy < fv; dy++) {
          const r = Math.min(y * fv + dy, lastY) * width;
          for (let dx = 0; dx < fh; dx++) sum += src[r + col(x * fh + dx)];
        }
        dst[o + x] = Math.trunc((sum + (count >> 1)) / count);
      }
    }
  }
}

/** MCU grid and blocks per MCU of each component; a single-component scan uses 1-block MCUs. */
function mcuGeometry(components: ComponentPlan[]) {
  if (components.length === 1) {
    const c = components[0];
    return { mcusX: c.blocksWide, mcusY: c.blocksHigh, shapes: [{ w: 1, h: 1 }] };
  }
  // Luma carries the largest sampling factors, and its real blocks always reach into the last MCU.
  const luma = components[0];
  return {
    mcusX: Math.ceil(luma.blocksWide / luma.h),
    mcusY: Math.ceil(luma.blocksHigh / luma.v),
    shapes: components.map((c) => ({ w: c.h, h: c.v })),
  };
}

/**
 * Forward DCT + quantisation of every block in MCU order. Blocks past the component's edge inside an MCU are
 * "dummy" blocks: zero AC and the DC of the block before, as libjpeg's jccoefct.c writes them.
 */
function quantizedBlocks(components: ComponentPlan[], divisors: QuantDivisors[]): Int16Array {
  const { mcusX, mcusY, shapes } = mcuGeometry(components);
  const blocksPerMcu = shapes.reduce((s, b) => s + b.w * b.h, 0);
  const coefs = new Int16Array(mcusX * mcusY * blocksPerMcu * 64);
  const ws = new Int32Array(64);
  let blk = 0;
  for (let my = 0; my < mcusY; my++) {
    for (let mx = 0; mx < mcusX; mx++) {
      for (let ci = 0; ci < components.length; ci++) {
        const c = components[ci];
        const { w, h } = shapes[ci];
        const div = divisors[c.tableIndex];
        for (let by = 0; by < h; by++) {
          for (let bx = 0; bx < w; bx++, blk++) {
            const blockX = mx * w + bx;
            const blockY = my * h + by;
            if (blockX < c.blocksWide && blockY < c.blocksHigh) {
              forwardDctQuantize(c.plane, blockY * 8 * c.stride + blockX * 8, c.stride, div, ws, coefs, blk * 64);
            } else {
              coefs[blk * 64] = coefs[(blk - 1) * 64];
            }
          }
        }
      }
    }
  }
  return coefs;
}

/** Visit every block in scan order with its component index, flagging restart boundaries. */
function forEachBlock(
  components: ComponentPlan[],
  restartInterval: number,
  visit: (block: number, component: number) => void,
  restart: (index: number) => void,
): void {
  const { mcusX, mcusY, shapes } = mcuGeometry(components);
  const total = mcusX * mcusY;
  let blk = 0;
  for (let mcu = 0; mcu < total; mcu++) {
    if (restartInterval > 0 && mcu > 0 && mcu % restartInterval === 0) restart((mcu / restartInterval - 1) & 7);
    for (let ci = 0; ci < shapes.length; ci++) {
      const count = shapes[ci].w * shapes[ci].h;
      for (let b = 0; b < count; b++) visit(blk++, ci);
    }
  }
}

function magnitudeBits(v: number): number {
  return v === 0 ? 0 : 32 - Math.clz32(v < 0 ? -v : v);
}

function symbolStatistics(components: ComponentPlan[], coefs: Int16Array, restartInterval: number) {
  const dc = [new Float64Array(256), new Float64Array(256)];
  const ac = [new Float64Array(256), new Float64Array(256)];
  const lastDc = new Int32Array(components.length);
  forEachBlock(
    components,
    restartInterval,
    (blk, ci) => {
      const t = components[ci].tableIndex;
      const o = blk * 64;
      dc[t][magnitudeBits(coefs[o] - lastDc[ci])]++;
      lastDc[ci] = coefs[o];
      let run = 0;
      for (let k = 1; k < 64; k++) {
        const v = coefs[o + ZIGZAG_TO_NATURAL[k]];
        if (v === 0) { run++; continue; }
        while (run > 15) { ac[t][0xf0]++; run -= 16; }
        ac[t][(run << 4) + magnitudeBits(v)]++;
        run = 0;
      }
      if (run > 0) ac[t][0]++;
    },
    () => lastDc.fill(0),
  );
  return { dc, ac };
}

function entropyCode(
  out: ByteWriter,
  components: ComponentPlan[],
  coefs: Int16Array,
  dcTables: EncodingTable[],
  acTables: EncodingTable[],
  restartInterval: number,
): void {
  const writer = new EntropyWriter(coefs.length >> 2);
  const lastDc = new Int32Array(components.length);
  forEachBlock(
    components,
    restartInterval,
    (blk, ci) => {
      const t = components[ci].tableIndex;
      const o = blk * 64;
      writer.block(coefs, o, coefs[o] - lastDc[ci], dcTables[t], acTables[t]);
      lastDc[ci] = coefs[o];
    },
    (n) => {
      writer.restart(n);
      lastDc.fill(0);
    },
  );
  writer.flush();
  out.bytes(writer.result());
}

function writeHeaders(
  out: ByteWriter,
  image: RawImage,
  components: ComponentPlan[],
  quant: readonly Uint16Array[],
  dcSpecs: HuffmanSpec[],
  acSpecs: HuffmanSpec[],
  restartInterval: number,
): void {
  out.u16(0xffd8);
  // JFIF APP0 as libjpeg writes it: version 1.01, no density units, 1:1 aspect, no thumbnail.
  out.u16(0xffe0);
  out.u16(16);
  out.bytes([0x4a, 0x46, 0x49, 0x46, 0x00, 1, 1, 0, 0, 1, 0, 1, 0, 0]);
  let sixteenBit = false;
  quant.forEach((table, id) => {
    const precision = table.some((v) => v > 255) ? 1 : 0;
    sixteenBit ||= precision === 1;
    out.u16(0xffdb);
    out.u16(2 + 1 + 64 * (precision + 1));
    out.u8((precision << 4) | id);
    for (let k = 0; k < 64; k++) {
      const v = table[ZIGZAG_TO_NATURAL[k]];
      if (precision) out.u16(v);
      else out.u8(v);
    }
  });
  out.u16(sixteenBit ? 0xffc1 : 0xffc0);
  out.u16(8 + 3 * components.length);
  out.u8(8);
  out.u16(image.height);
  out.u16(image.width);
  out.u8(components.length);
  for (const c of components) out.bytes([c.id, (c.h << 4) | c.v, c.tableIndex]);
  dcSpecs.forEach((dc, id) => {
    writeDht(out, 0x00 | id, dc);
    writeDht(out, 0x10 | id, acSpecs[id]);
  });
  if (restartInterval > 0) {
    out.u16(0xffdd);
    out.u16(4);
    out.u16(restartInterval);
  }
  out.u16(0xffda);
  out.u16(6 + 2 * components.length);
  out.u8(components.length);
  for (const c of components) out.bytes([c.id, (c.tableIndex << 4) | c.tableIndex]);
  out.bytes([0, 63, 0]);
}

function writeDht(out: ByteWriter, classAndId: number, spec: HuffmanSpec): void {
  out.u16(0xffc4);
  out.u16(2 + 1 + 16 + spec.values.length);
  out.u8(classAndId);
  out.bytes(spec.bits);
  out.bytes(spec.values);
}

class ByteWriter {
  private buf: Uint8Array;
  length = 0;
  constructor(initial: number) {
    this.buf = new Uint8Array(initial);
  }
  ensure(extra: number): Uint8Array {
    if (this.length + extra > this.buf.length) {
      const next = new Uint8Array(Math.max(this.buf.length * 2, this.length + extra));
      next.set(this.buf.subarray(0, this.length));
      this.buf = next;
    }
    return this.buf;
  }
  u8(v: number): void {
    this.ensure(1)[this.length++] = v;
  }
  u16(v: number): void {
    const b = this.ensure(2);
    b[this.length++] = v >> 8;
    b[this.length++] = v & 0xff;
  }
  bytes(v: ArrayLike<number>): void {
    const b = this.ensure(v.length);
    for (let i = 0; i < v.length; i++) b[this.length++] = v[i];
  }
  result(): Uint8Array {
    return this.buf.slice(0, this.length);
  }
}

/**
 * Huffman-codes blocks into entropy-coded segment bytes: MSB-first, 0xFF stuffed with 0x00, padded with 1-bits
 * before restart markers and at the end, as libjpeg does. Room for a worst-case block is reserved once per
 * block, so emitting a byte needs no bounds check.
 */
class EntropyWriter {
  private buf: Uint8Array;
  private pos = 0;
  private acc = 0;
  private count = 0;

  constructor(initial: number) {
    this.buf = new Uint8Array(Math.max(initial, 1024));
  }

  private reserve(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.pos + n));
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
  }

  /** Code one block (natural-order coefficients at `o`) whose DC difference from its predecessor is `diff`. */
  block(coefs: Int16Array, o: number, diff: number, dc: EncodingTable, ac: EncodingTable): void {
    // 64 codes of ≤ 16 bits plus ≤ 11 magnitude bits, doubled for stuffing, fits in 512 bytes.
    this.reserve(512);
    let nbits = magnitudeBits(diff);
    if (nbits > 11) throw new JpegError('INVALID_ARGUMENT', 'DC coefficient out of range for 8-bit JPEG');
    this.emit(dc.code[nbits], dc.length[nbits]);
    if (nbits) this.emit((diff < 0 ? diff - 1 : diff) & ((1 << nbits) - 1), nbits);
    const zz = ZIGZAG_TO_NATURAL;
    const codes = ac.code, lengths = ac.length;
    let run = 0;
    for (let k = 1; k < 64; k++) {
      const v = coefs[o + zz[k]];
      if (v === 0) {
        run++;
        continue;
      }
      for (; run > 15; run -= 16) this.emit(codes[0xf0], lengths[0xf0]);
      nbits = magnitudeBits(v);
      if (nbits > 10) throw new JpegError('INVALID_ARGUMENT', 'AC coefficient out of range for 8-bit JPEG');
      const sym = (run << 4) + nbits;
      this.emit(codes[sym], lengths[sym]);
      this.emit((v < 0 ? v - 1 : v) & ((1 << nbits) - 1), nbits);
      run = 0;
    }
    if (run > 0) this.emit(codes[0], lengths[0]);
  }

  /** Append `len` (≤ 16) bits of `value`; space was reserved by the caller. */
  private emit(value: number, len: number): void {
    // Fewer than 8 bits stay pending between calls, so acc never needs more than 24.
    this.acc = (this.acc << len) | value;
    this.count += len;
    while (this.count >= 8) {
      this.count -= 8;
      const byte = (this.acc >>> this.count) & 0xff;
      this.buf[this.pos++] = byte;
      if (byte === 0xff) this.buf[this.pos++] = 0;
    }
  }

  /** Pad the last byte with 1-bits (libjpeg's flush_bits). */
  flush(): void {
    this.reserve(2);
    if (this.count > 0) this.emit((1 << (8 - this.count)) - 1, 8 - this.count);
  }

  restart(n: number): void {
    this.flush();
    this.reserve(2);
    this.buf[this.pos++] = 0xff;
    this.buf[this.pos++] = 0xd0 + n;
  }

  result(): Uint8Array {
    return this.buf.subarray(0, this.pos);
  }
}
