import { BitReader, decodingTable, type DecodingTable } from './bitreader.js';
import { CB_B, CB_G, CR_G, CR_R } from './color.js';
import { inverseDctIslow } from './dct.js';
import { JpegError } from './errors.js';
import { LUMA_SAMPLING, type RawImage, type Subsampling } from './image.js';
import { estimateQuality, exifOrientation, type QualityEstimate } from './metadata.js';
import { ZIGZAG_TO_NATURAL } from './tables.js';

/** sharp's default input pixel limit (0x3FFF²); libjpeg itself is bounded by JPEG's 65535² fields. */
export const DEFAULT_MAX_PIXELS = 268_402_689;

export interface DecodeOptions {
  /** Reject images with more pixels than this before allocating anything (default 268,402,689, as sharp). */
  maxPixels?: number;
  /** 'rgb' (default) expands grayscale to 3 channels, like PIL's convert('RGB'); 'native' keeps 1 channel. */
  output?: 'rgb' | 'native';
  /**
   * Decode what is there when entropy-coded data is cut short or corrupt past some point, filling the rest with
   * zero coefficients as libjpeg does (with a warning in `info.warnings`). Default false: throw a JpegError.
   */
  allowTruncated?: boolean;
}

export interface JpegComponentInfo {
  readonly id: number;
  readonly h: number;
  readonly v: number;
  readonly quantTable: number;
}

export interface JpegInfo {
  readonly width: number;
  readonly height: number;
  /** SOF0 baseline, SOF1 extended sequential (e.g. 16-bit tables), SOF2 progressive. */
  readonly frame: 'baseline' | 'extended' | 'progressive';
  readonly components: readonly JpegComponentInfo[];
  readonly colorSpace: 'grayscale' | 'ycbcr' | 'rgb';
  /** J:a:b name of the sampling factors, 'other' when not one of the common ones, null for grayscale. */
  readonly subsampling: Subsampling | 'other' | null;
  /** Quantisation tables by table id, natural (row-major) order; undefined where not defined. */
  readonly quantTables: readonly (Uint16Array | undefined)[];
  readonly quantPrecisionBits: readonly (8 | 16 | undefined)[];
  /** IJG quality estimated from the luma (and chroma) tables. */
  readonly quality: QualityEstimate | undefined;
  readonly restartInterval: number;
  readonly scans: number;
  /** EXIF orientation 1..8 when present. Reported only: pixels are never rotated. */
  readonly orientation: number | undefined;
  readonly jfif: boolean;
  readonly adobe: boolean;
  readonly hasIccProfile: boolean;
  readonly warnings: readonly string[];
}

export interface DecodedJpeg extends RawImage {
  readonly data: Uint8Array;
  readonly info: JpegInfo;
}

interface Component extends JpegComponentInfo {
  readonly blocksWide: number; // real blocks (width_in_blocks)
  readonly blocksHigh: number;
  readonly stride: number; // blocks per row in `coefs` (MCU-padded)
  readonly coefs: Int16Array; // 64 per block, natural order
  pred: number;
  dcTable: DecodingTable | undefined;
  acTable: DecodingTable | undefined;
  scanned: boolean;
}

interface Frame {
  readonly kind: JpegInfo['frame'];
  readonly width: number;
  readonly height: number;
  readonly maxH: number;
  readonly maxV: number;
  readonly mcusX: number;
  readonly mcusY: number;
  readonly components: Component[];
}

// libjpeg's natural-order table has 16 extra entries of 63 so corrupt run lengths stay in the block.
const NATURAL = (() => {
  const t = new Uint8Array(80).fill(63);
  t.set(ZIGZAG_TO_NATURAL);
  return t;
})();

const SOF_NAMES: Record<number, string> = {
  0xc3: 'lossless (SOF3)', 0xc5: 'hierarchical (SOF5)', 0xc6: 'hierarchical progressive (SOF6)',
  0xc7: 'hierarchical lossless (SOF7)', 0xc9: 'arithmetic-coded (SOF9)', 0xca: 'arithmetic-coded progressive (SOF10)',
  0xcb: 'arithmetic-coded lossless (SOF11)', 0xcd: 'arithmetic-coded hierarchical (SOF13)',
  0xce: 'arithmetic-coded hierarchical (SOF14)', 0xcf: 'arithmetic-coded hierarchical lossless (SOF15)',
};

/** Read headers and count scans without decoding pixels. */
export function readJpegInfo(bytes: Uint8Array, options: Pick<DecodeOptions, 'maxPixels'> = {}): JpegInfo {
  return new JpegParser(bytes, { ...options, headersOnly: true }).run().info;
}

/** Decode a baseline, extended or progressive 8-bit JPEG to pixels, bit-exact with libjpeg-turbo (djpeg). */
export function decodeJpeg(bytes: Uint8Array, options: DecodeOptions = {}): DecodedJpeg {
  const parser = new JpegParser(bytes, { ...options, headersOnly: false }).run();
  const { frame, info } = parser;
  const planes = frame.components.map((c) => reconstructPlane(c, parser.quant[c.quantTable]));
  const native = options.output === 'native';
  const channels = info.colorSpace === 'grayscale' && native ? 1 : 3;
  return { width: frame.width, height: frame.height, channels, data: toPixels(frame, planes, info.colorSpace, channels), info };
}

class JpegParser {
  readonly quant: (Int32Array | undefined)[] = [];
  private readonly quantNatural: (Uint16Array | undefined)[] = [];
  private readonly quantBits: (8 | 16 | undefined)[] = [];
  private readonly dcSpecs: (DecodingTable | undefined)[] = [];
  private readonly acSpecs: (DecodingTable | undefined)[] = [];
  private restartInterval = 0;
  private scans = 0;
  private jfif = false;
  private adobeTransform: number | undefined;
  private orientation: number | undefined;
  private hasIcc = false;
  private readonly warnings: string[] = [];
  private frameOrUndefined: Frame | undefined;
  private readonly maxPixels: number;
  info!: JpegInfo;

  constructor(
    private readonly data: Uint8Array,
    private readonly options: DecodeOptions & { headersOnly: boolean },
  ) {
    if (!(data instanceof Uint8Array)) throw new JpegError('INVALID_ARGUMENT', 'JPEG data must be a Uint8Array');
    this.maxPixels = options.maxPixels ?? DEFAULT_MAX_PIXELS;
  }

  get frame(): Frame {
    return this.frameOrUndefined!;
  }

  run(): this {
    const d = this.data;
    if (d.length < 2 || d[0] !== 0xff || d[1] !== 0xd8) throw new JpegError('NOT_JPEG', 'not a JPEG file (no SOI marker)');
    let pos = 2;
    let sawEoi = false;
    while (!sawEoi) {
      // libjpeg's next_marker: skip garbage up to 0xFF, then fill bytes.
      const start = pos;
      while (pos < d.length && d[pos] !== 0xff) pos++;
      if (pos > start) this.warnings.push(`${pos - start} extraneous bytes before marker`);
      while (pos < d.length && d[pos] === 0xff) pos++;
      if (pos >= d.length) break;
      const marker = d[pos++];
      if (marker === 0xd9) sawEoi = true;
      else if (marker === 0xda) pos = this.scan(pos);
      else if ((marker >= 0xd0 && marker <= 0xd7) || marker === 0x01) continue; // parameterless, ignored as libjpeg does
      else if (marker === 0xd8) throw new JpegError('CORRUPT', 'unexpected second SOI marker');
      else pos = this.segment(marker, pos);
    }
    if (!this.frameOrUndefined) throw new JpegError(sawEoi ? 'CORRUPT' : 'TRUNCATED', 'no image frame (SOF) before end of data');
    if (this.scans === 0) throw new JpegError(sawEoi ? 'CORRUPT' : 'TRUNCATED', 'no scan (SOS) in JPEG data');
    if (!sawEoi) {
      if (!this.options.allowTruncated && !this.options.headersOnly) {
        throw new JpegError('TRUNCATED', 'premature end of JPEG data (no EOI marker)');
      }
      this.warnings.push('premature end of JPEG data (no EOI marker)');
    }
    this.info = this.makeInfo();
    return this;
  }

  private segment(marker: number, pos: number): number {
    const d = this.data;
    if (pos + 2 > d.length) throw new JpegError('TRUNCATED', `data ends inside marker 0xFF${hex(marker)}`);
    const length = (d[pos] << 8) | d[pos + 1];
    if (length < 2) throw new JpegError('CORRUPT', `marker 0xFF${hex(marker)} has invalid length ${length}`);
    const end = pos + length;
    if (end > d.length) throw new JpegError('TRUNCATED', `data ends inside marker 0xFF${hex(marker)} segment`);
    const body = d.subarray(pos + 2, end);
    if (marker === 0xc0 || marker === 0xc1 || marker === 0xc2) this.sof(marker, body);
    else if (marker in SOF_NAMES) throw new JpegError('UNSUPPORTED', `${SOF_NAMES[marker]} JPEG is not supported`);
    else if (marker === 0xc4) this.dht(body);
    else if (marker === 0xdb) this.dqt(body);
    else if (marker === 0xdd) {
      if (body.length !== 2) throw new JpegError('CORRUPT', 'DRI segment has wrong length');
      this.restartInterval = (body[0] << 8) | body[1];
    } else if (marker === 0xdc) throw new JpegError('UNSUPPORTED', 'DNL marker (height defined after the scan) is not supported');
    else if (marker === 0xcc) throw new JpegError('UNSUPPORTED', 'arithmetic coding (DAC marker) is not supported');
    else if (marker === 0xe0) this.jfif ||= ascii(body, 5) === 'JFIF\0';
    else if (marker === 0xe1) this.orientation ??= exifOrientation(body);
    else if (marker === 0xe2) this.hasIcc ||= ascii(body, 12) === 'ICC_PROFILE\0';
    else if (marker === 0xee) {
      if (ascii(body, 5) === 'Adobe' && body.length >= 12) this.adobeTransform = body[11];
    } else if (!((marker >= 0xe3 && marker <= 0xef) || marker === 0xfe || (marker >= 0xf0 && marker <= 0xfd))) {
      throw new JpegError('CORRUPT', `unknown marker 0xFF${hex(marker)}`);
    }
    return end;
  }

  private dqt(body: Uint8Array): void {
    let p = 0;
    while (p < body.length) {
      const pq = body[p] >> 4;
      const tq = body[p] & 15;
      p++;
      if (pq > 1 || tq > 3) throw new JpegError('CORRUPT', `DQT: invalid table ${tq} precision ${pq}`);
      const size = pq ? 128 : 64;
      if (p + size > body.length) throw new JpegError('CORRUPT', 'DQT segment too short');
      const natural = new Uint16Array(64);
      for (let k = 0; k < 64; k++) natural[ZIGZAG_TO_NATURAL[k]] = pq ? (body[p + 2 * k] << 8) | body[p + 2 * k + 1] : body[p + k];
      p += size;
      this.quantNatural[tq] = natural;
      this.quant[tq] = Int32Array.from(natural);
      this.quantBits[tq] = pq ? 16 : 8;
    }
  }

  private dht(body: Uint8Array): void {
    let p = 0;
    while (p < body.length) {
      if (p + 17 > body.length) throw new JpegError('CORRUPT', 'DHT segment too short');
      const tc = body[p] >> 4;
      const th = body[p] & 15;
      if (tc > 1 || th > 3) throw new JpegError('CORRUPT', `DHT: invalid table class ${tc} id ${th}`);
      const bits = body.slice(p + 1, p + 17);
      const count = bits.reduce((s, b) => s + b, 0);
      p += 17;
      if (count > 256 || p + count > body.length) throw new JpegError('CORRUPT', 'DHT: bad symbol count');
      const table = decodingTable({ bits, values: body.slice(p, p + count) });
      p += count;
      (tc === 0 ? this.dcSpecs : this.acSpecs)[th] = table;
    }
  }

  private sof(marker: number, body: Uint8Array): void {
    if (this.frameOrUndefined) throw new JpegError('CORRUPT', 'more than one SOF marker');
    if (body.length < 6) throw new JpegError('CORRUPT', 'SOF segment too short');
    const precision = body[0];
    if (precision !== 8) throw new JpegError('UNSUPPORTED', `${precision}-bit JPEG is not supported (8-bit only)`);
    const height = (body[1] << 8) | body[2];
    const width = (body[3] << 8) | body[4];
    const n = body[5];
    if (height === 0) throw new JpegError('UNSUPPORTED', 'image height 0 (defined by a DNL marker) is not supported');
    if (width === 0) throw new JpegError('CORRUPT', 'image width is 0');
    if (n === 4) throw new JpegError('UNSUPPORTED', 'CMYK/YCCK (4-component) JPEG is not supported');
    if (n !== 1 && n !== 3) throw new JpegError('UNSUPPORTED', `${n}-component JPEG is not supported`);
    if (body.length !== 6 + 3 * n) throw new JpegError('CORRUPT', 'SOF segment length does not match its components');
    if (width * height > this.maxPixels) {
      throw new JpegError('TOO_LARGE', `image is ${width}×${height} = ${width * height} pixels, over the limit of ${this.maxPixels}`);
    }
    const specs: { id: number; h: number; v: number; quantTable: number }[] = [];
    for (let i = 0; i < n; i++) {
      const o = 6 + 3 * i;
      const h = body[o + 1] >> 4, v = body[o + 1] & 15, tq = body[o + 2];
      if (h < 1 || h > 4 || v < 1 || v > 4) throw new JpegError('CORRUPT', `component ${body[o]} has invalid sampling ${h}×${v}`);
      if (tq > 3) throw new JpegError('CORRUPT', `component ${body[o]} uses invalid quantisation table ${tq}`);
      if (specs.some((s) => s.id === body[o])) throw new JpegError('CORRUPT', `duplicate component id ${body[o]}`);
      specs.push({ id: body[o], h, v, quantTable: tq });
    }
    const maxH = Math.max(...specs.map((s) => s.h));
    const maxV = Math.max(...specs.map((s) => s.v));
    if (n > 1 && specs.reduce((s, c) => s + c.h * c.v, 0) > 10) {
      throw new JpegError('CORRUPT', 'sampling factors give more than 10 blocks per MCU');
    }
    for (const s of specs) {
      if (maxH % s.h !== 0 || maxV % s.v !== 0) {
        throw new JpegError('UNSUPPORTED', `fractional upsampling (${s.h}×${s.v} of ${maxH}×${maxV}) is not supported`);
      }
    }
    const mcusX = Math.ceil(width / (8 * maxH));
    const mcusY = Math.ceil(height / (8 * maxV));
    const headersOnly = this.options.headersOnly;
    const components = specs.map((s): Component => {
      const stride = mcusX * s.h;
      return {
        ...s,
        blocksWide: Math.ceil(Math.ceil((width * s.h) / maxH) / 8),
        blocksHigh: Math.ceil(Math.ceil((height * s.v) / maxV) / 8),
        stride,
        coefs: new Int16Array(headersOnly ? 0 : stride * mcusY * s.v * 64),
        pred: 0,
        dcTable: undefined,
        acTable: undefined,
        scanned: false,
      };
    });
    const kind = marker === 0xc0 ? 'baseline' : marker === 0xc1 ? 'extended' : 'progressive';
    this.frameOrUndefined = { kind, width, height, maxH, maxV, mcusX, mcusY, components };
  }

  /** Parse SOS at `pos` and decode (or, for headers only, skip) its entropy-coded data; returns the next position. */
  private scan(pos: number): number {
    const d = this.data;
    const frame = this.frameOrUndefined;
    if (!frame) throw new JpegError('CORRUPT', 'SOS marker before SOF');
    if (pos + 2 > d.length) throw new JpegError('TRUNCATED', 'data ends inside SOS');
    const length = (d[pos] << 8) | d[pos + 1];
    if (pos + length > d.length) throw new JpegError('TRUNCATED', 'data ends inside SOS');
    const ns = d[pos + 2];
    if (ns < 1 || ns > 4 || length !== 6 + 2 * ns) throw new JpegError('CORRUPT', 'SOS segment has invalid length or component count');
    const comps: Component[] = [];
    for (let i = 0; i < ns; i++) {
      const id = d[pos + 3 + 2 * i];
      const c = frame.components.find((x) => x.id === id);
      if (!c) throw new JpegError('CORRUPT', `SOS references unknown component ${id}`);
      if (comps.includes(c)) throw new JpegError('CORRUPT', `SOS lists component ${id} twice`);
      const sel = d[pos + 4 + 2 * i];
      c.dcTable = this.dcSpecs[sel >> 4];
      c.acTable = this.acSpecs[sel & 15];
      comps.push(c);
    }
    const o = pos + 3 + 2 * ns;
    const ss = d[o], se = d[o + 1], ah = d[o + 2] >> 4, al = d[o + 2] & 15;
    this.scans++;
    const progressive = frame.kind === 'progressive';
    if (progressive) {
      const bad = ss === 0 ? se !== 0 : se < ss || se > 63 || ns !== 1;
      if (bad || al > 13 || (ah !== 0 && al !== ah - 1)) throw new JpegError('CORRUPT', `invalid progressive scan parameters Ss=${ss} Se=${se} Ah=${ah} Al=${al}`);
    } else if (ss !== 0 || se !== 63 || ah !== 0 || al !== 0) {
      throw new JpegError('CORRUPT', 'sequential scan with progressive parameters');
    }
    if (frame.components.length > 1 && ns > 1 && comps.reduce((s, c) => s + c.h * c.v, 0) > 10) {
      throw new JpegError('CORRUPT', 'scan has more than 10 blocks per MCU');
    }
    const reader = new BitReader(d, pos + length);
    if (this.options.headersOnly) {
      // Skip entropy-coded data (and any RST markers inside it) up to the next other marker.
      for (;;) {
        const m = reader.nextMarker();
        if (m < 0xd0 || m > 0xd7) return reader.pos;
        reader.pos += 2;
      }
    }
    const needDc = !progressive || (ss === 0 && ah === 0);
    const needAc = !progressive || ss > 0;
    for (const c of comps) {
      if (needDc && !c.dcTable) throw new JpegError('CORRUPT', `DC Huffman table for component ${c.id} is not defined`);
      if (needDc && c.dcTable!.maxSymbol > 15) throw new JpegError('CORRUPT', 'DC Huffman table has symbols above 15');
      if (needAc && !c.acTable) throw new JpegError('CORRUPT', `AC Huffman table for component ${c.id} is not defined`);
      c.scanned = true;
    }
    this.decodeScan(reader, frame, comps, ss, se, ah, al);
    return reader.pos;
  }

  private decodeScan(
    reader: BitReader, frame: Frame, comps: Component[], ss: number, se: number, ah: number, al: number,
  ): void {
    const single = comps.length === 1;
    const c0 = comps[0];
    const mcusX = single ? c0.blocksWide : frame.mcusX;
    const mcusY = single ? c0.blocksHigh : frame.mcusY;
    const total = mcusX * mcusY;
    const progressive = frame.kind === 'progressive';
    const decodeBlock = !progressive
      ? decodeBaseline
      : ss === 0
        ? ah === 0 ? decodeDcFirst : decodeDcRefine
        : ah === 0 ? decodeAcFirst : decodeAcRefine;
    for (const c of comps) c.pred = 0;
    const restart = this.restartInterval;
    let expectedRst = 0;
    const state = { eobrun: 0, ss, se, al };
    for (let mcu = 0; mcu < total; mcu++) {
      if (restart > 0 && mcu > 0 && mcu % restart === 0) {
        this.checkOverrun(reader);
        const m = reader.nextMarker();
        if (m !== 0xd0 + expectedRst) {
          if (this.options.allowTruncated) { this.warnings.push('missing restart marker; rest of scan left blank'); return; }
          throw new JpegError(m < 0 ? 'TRUNCATED' : 'CORRUPT', `expected RST${expectedRst} marker, found ${m < 0 ? 'end of data' : '0xFF' + hex(m)}`);
        }
        reader.pos += 2;
        expectedRst = (expectedRst + 1) & 7;
        for (const c of comps) c.pred = 0;
        state.eobrun = 0;
      }
      const my = (mcu / mcusX) | 0;
      const mx = mcu - my * mcusX;
      if (single) {
        decodeBlock(reader, c0, (my * c0.stride + mx) * 64, state);
      } else {
        for (const c of comps) {
          for (let by = 0; by < c.v; by++) {
            const row = (my * c.v + by) * c.stride + mx * c.h;
            for (let bx = 0; bx < c.h; bx++) decodeBlock(reader, c, (row + bx) * 64, state);
          }
        }
      }
      if (mx === mcusX - 1 && reader.stopped && reader.overran) {
        if (!this.options.allowTruncated) this.checkOverrun(reader);
      }
    }
    if (reader.overran) {
      if (!this.options.allowTruncated) this.checkOverrun(reader);
      this.warnings.push('entropy-coded data ended early; missing coefficients are zero');
    }
    // Leave `pos` at the next marker.
    reader.nextMarker();
  }

  private checkOverrun(reader: BitReader): void {
    if (!reader.overran) return;
    const atEnd = reader.pos >= this.data.length;
    throw new JpegError(atEnd ? 'TRUNCATED' : 'CORRUPT', atEnd ? 'JPEG data is truncated' : 'premature end of entropy-coded data segment');
  }

  private makeInfo(): JpegInfo {
    const frame = this.frame;
    const comps = frame.components;
    let colorSpace: JpegInfo['colorSpace'] = 'grayscale';
    if (comps.length === 3) {
      const ids = comps.map((c) => c.id).join(',');
      if (this.jfif) colorSpace = 'ycbcr';
      else if (this.adobeTransform !== undefined) colorSpace = this.adobeTransform === 0 ? 'rgb' : 'ycbcr';
      else colorSpace = ids === '82,71,66' ? 'rgb' : 'ycbcr';
    }
    let subsampling: JpegInfo['subsampling'] = null;
    if (comps.length === 3) {
      subsampling = 'other';
      const [y, cb, cr] = comps;
      if (cb!.h === 1 && cb!.v === 1 && cr!.h === 1 && cr!.v === 1) {
        for (const [name, [h, v]] of Object.entries(LUMA_SAMPLING)) if (y!.h === h && y!.v === v) subsampling = name as Subsampling;
      }
    }
    const lumaTable = this.quantNatural[comps[0].quantTable];
    const chromaTable = comps.length === 3 ? this.quantNatural[comps[1].quantTable] : undefined;
    return {
      width: frame.width,
      height: frame.height,
      frame: frame.kind,
      components: comps.map(({ id, h, v, quantTable }) => ({ id, h, v, quantTable })),
      colorSpace,
      subsampling,
      quantTables: [...this.quantNatural],
      quantPrecisionBits: [...this.quantBits],
      quality: lumaTable ? estimateQuality(lumaTable, chromaTable) : undefined,
      restartInterval: this.restartInterval,
      scans: this.scans,
      orientation: this.orientation,
      jfif: this.jfif,
      adobe: this.adobeTransform !== undefined,
      hasIccProfile: this.hasIcc,
      warnings: this.warnings,
    };
  }
}

interface ScanState {
  eobrun: number;
  readonly ss: number;
  readonly se: number;
  readonly al: number;
}

function decodeBaseline(r: BitReader, c: Component, o: number): void {
  c.pred = r.sequentialBlock(c.coefs, o, c.dcTable!, c.acTable!, c.pred, NATURAL);
}

function decodeDcFirst(r: BitReader, c: Component, o: number, s: ScanState): void {
  c.pred += r.receiveExtend(r.decode(c.dcTable!));
  c.coefs[o] = c.pred * (1 << s.al);
}

function decodeDcRefine(r: BitReader, c: Component, o: number, s: ScanState): void {
  if (r.bit()) c.coefs[o] |= 1 << s.al;
}

function decodeAcFirst(r: BitReader, c: Component, o: number, s: ScanState): void {
  if (s.eobrun > 0) {
    s.eobrun--;
    return;
  }
  const coefs = c.coefs;
  const ac = c.acTable!;
  for (let k = s.ss; k <= s.se; k++) {
    const rs = r.decode(ac);
    const size = rs & 15;
    const run = rs >> 4;
    if (size) {
      k += run;
      coefs[o + NATURAL[k]] = r.receiveExtend(size) * (1 << s.al);
    } else if (run === 15) {
      k += 15;
    } else {
      s.eobrun = (1 << run) - 1;
      if (run) s.eobrun += r.bits(run);
      break;
    }
  }
}

function decodeAcRefine(r: BitReader, c: Component, o: number, s: ScanState): void {
  const coefs = c.coefs;
  const p1 = 1 << s.al;
  const m1 = -1 << s.al;
  let k = s.ss;
  const se = s.se;
  if (s.eobrun === 0) {
    const ac = c.acTable!;
    for (; k <= se; k++) {
      const rs = r.decode(ac);
      let run = rs >> 4;
      let value = 0;
      if (rs & 15) {
        // A newly nonzero coefficient has magnitude 1 in this bit plane (size must be 1).
        value = r.bit() ? p1 : m1;
      } else if (run !== 15) {
        s.eobrun = 1 << run;
        if (run) s.eobrun += r.bits(run);
        break;
      }
      do {
        const z = o + NATURAL[k];
        if (coefs[z] !== 0) {
          if (r.bit() && (coefs[z] & p1) === 0) coefs[z] += coefs[z] >= 0 ? p1 : m1;
        } else if (--run < 0) break;
        k++;
      } while (k <= se);
      if (value) coefs[o + NATURAL[k]] = value;
    }
  }
  if (s.eobrun > 0) {
    for (; k <= se; k++) {
      const z = o + NATURAL[k];
      if (coefs[z] !== 0 && r.bit() && (coefs[z] & p1) === 0) coefs[z] += coefs[z] >= 0 ? p1 : m1;
    }
    s.eobrun--;
  }
}

interface Plane {
  readonly samples: Uint8ClampedArray;
  readonly stride: number;
}

function reconstructPlane(c: Component, quant: Int32Array | undefined): Plane {
  if (!quant) throw new JpegError('CORRUPT', `quantisation table ${c.quantTable} is not defined`);
  const stride = c.blocksWide * 8;
  const samples = new Uint8ClampedArray(stride * c.blocksHigh * 8);
  const ws = new Int32Array(64);
  for (let by = 0; by < c.blocksHigh; by++) {
    for (let bx = 0; bx < c.blocksWide; bx++) {
      inverseDctIslow(c.coefs, (by * c.stride + bx) * 64, quant, samples, by * 8 * stride + bx * 8, stride, ws);
    }
  }
  return { samples, stride };
}

/** A full-resolution row of one component: `samples[offset .. offset + width)`. */
interface RowSource {
  samples: Uint8ClampedArray;
  offset: number;
  /** Make row y available in `samples` at `offset`. */
  load(y: number): void;
}

/**
 * Upsample to full resolution and convert to RGB (or gray), row by row. The output is written through a
 * Uint8ClampedArray view, whose stores clamp to 0..255 exactly as libjpeg's range-limit table does for the
 * values colour conversion produces.
 */
function toPixels(frame: Frame, planes: Plane[], colorSpace: JpegInfo['colorSpace'], channels: 1 | 3): Uint8Array {
  const { width, height } = frame;
  const buffer = new ArrayBuffer(width * height * channels);
  const out = new Uint8ClampedArray(buffer);
  const sources = frame.components.map((c, i) => {
    const plane = planes[i];
    const dw = Math.ceil((width * c.h) / frame.maxH);
    const dh = Math.ceil((height * c.v) / frame.maxV);
    return rowSource(plane.samples, plane.stride, dw, dh, frame.maxH / c.h, frame.maxV / c.v);
  });
  const [s0, s1, s2] = sources;
  const [c0, c1, c2] = frame.components;
  if (colorSpace === 'ycbcr' && c0.h === 2 && c0.v === 2 && [c1, c2].every((c) => c.h === 1 && c.v === 1) && width > 4) {
    ycc420ToRgb(out, width, height, planes);
    return new Uint8Array(buffer);
  }
  for (let y = 0; y < height; y++) {
    s0.load(y);
    let o = y * width * channels;
    const y0 = s0.offset, ys = s0.samples;
    if (!s1 || !s2) {
      if (channels === 1) out.set(ys.subarray(y0, y0 + width), o);
      else for (let x = 0; x < width; x++, o += 3) out[o] = out[o + 1] = out[o + 2] = ys[y0 + x];
      continue;
    }
    s1.load(y);
    s2.load(y);
    const a = s1.samples, a0 = s1.offset, b = s2.samples, b0 = s2.offset;
    if (colorSpace === 'rgb') {
      for (let x = 0; x < width; x++, o += 3) {
        out[o] = ys[y0 + x]; out[o + 1] = a[a0 + x]; out[o + 2] = b[b0 + x];
      }
    } else {
      for (let x = 0; x < width; x++, o += 3) {
        const luma = ys[y0 + x], cb = a[a0 + x], cr = b[b0 + x];
        out[o] = luma + CR_R[cr];
        out[o + 1] = luma + ((CB_G[cb] + CR_G[cr]) >> 16);
        out[o + 2] = luma + CB_B[cb];
      }
    }
  }
  return new Uint8Array(buffer);
}

/**
 * 4:2:0 fast path: libjpeg-turbo's h2v2 fancy upsampling of Cb and Cr fused with YCbCr→RGB, so each chroma
 * sample's two output columns are converted straight from the column sums. Same results as rowSource + the
 * generic loop (requires a chroma width > 2, i.e. image width > 4).
 */
function ycc420ToRgb(out: Uint8ClampedArray, width: number, height: number, planes: Plane[]): void {
  const [yp, cbp, crp] = planes;
  const ys = yp.samples, cbs = cbp.samples, crs = crp.samples;
  const cStride = cbp.stride;
  const cw = (width + 1) >> 1;
  const lastRow = ((height + 1) >> 1) - 1;
  for (let y = 0; y < height; y++) {
    const i = y >> 1;
    const near = i * cStride;
    const farRow = y & 1 ? i + 1 : i - 1;
    const far = (farRow < 0 ? 0 : farRow > lastRow ? lastRow : farRow) * cStride;
    const yRow = y * yp.stride;
    let o = y * width * 3;
    // Column sums (3·near + far) for x-1, x, x+1 of both chroma planes.
    let cbCur = cbs[near] * 3 + cbs[far], crCur = crs[near] * 3 + crs[far];
    let cbLast = cbCur, crLast = crCur;
    for (let x = 0; x < cw; x++) {
      const n = x + 1 < cw ? x + 1 : x;
      const cbNext = cbs[near + n] * 3 + cbs[far + n], crNext = crs[near + n] * 3 + crs[far + n];
      // Even output column leans left (+8), odd leans right (+7); the outermost columns use the edge sample.
      let cb = x === 0 ? (cbCur * 4 + 8) >> 4 : (cbCur * 3 + cbLast + 8) >> 4;
      let cr = x === 0 ? (crCur * 4 + 8) >> 4 : (crCur * 3 + crLast + 8) >> 4;
      let luma = ys[yRow + 2 * x];
      out[o] = luma + CR_R[cr];
      out[o + 1] = luma + ((CB_G[cb] + CR_G[cr]) >> 16);
      out[o + 2] = luma + CB_B[cb];
      if (2 * x + 1 < width) {
        cb = x === cw - 1 ? (cbCur * 4 + 7) >> 4 : (cbCur * 3 + cbNext + 7) >> 4;
        cr = x === cw - 1 ? (crCur * 4 + 7) >> 4 : (crCur * 3 + crNext + 7) >> 4;
        luma = ys[yRow + 2 * x + 1];
        out[o + 3] = luma + CR_R[cr];
        out[o + 4] = luma + ((CB_G[cb] + CR_G[cr]) >> 16);
        out[o + 5] = luma + CB_B[cb];
      }
      o += 6;
      cbLast = cbCur; crLast = crCur;
      cbCur = cbNext; crCur = crNext;
    }
  }
}

/**
 * Rows of one component at full resolution, by libjpeg-turbo's rules: fancy (triangle) upsampling for 2×1 and
 * 2×2 when the component is wider than 2 samples, and for 1×2; box replication otherwise; image edges repeat
 * the outermost sample.
 */
function rowSource(src: Uint8ClampedArray, stride: number, dw: number, dh: number, fh: number, fv: number): RowSource {
  if (fh === 1 && fv === 1) {
    const source: RowSource = { samples: src, offset: 0, load: (y) => { source.offset = y * stride; } };
    return source;
  }
  const out = new Uint8ClampedArray(dw * fh + 8);
  const lastRow = dh - 1;
  const rowAt = (i: number) => (i < 0 ? 0 : i > lastRow ? lastRow : i) * stride;
  let load: (y: number) => void;
  if (fh === 2 && fv === 1 && dw > 2) {
    load = (y) => {
      const p = y * stride;
      let v = src[p];
      out[0] = v;
      out[1] = (v * 3 + src[p + 1] + 2) >> 2;
      for (let x = 1; x < dw - 1; x++) {
        v = src[p + x] * 3;
        out[2 * x] = (v + src[p + x - 1] + 1) >> 2;
        out[2 * x + 1] = (v + src[p + x + 1] + 2) >> 2;
      }
      v = src[p + dw - 1];
      out[2 * dw - 2] = (v * 3 + src[p + dw - 2] + 1) >> 2;
      out[2 * dw - 1] = v;
    };
  } else if (fh === 1 && fv === 2) {
    load = (y) => {
      const i = y >> 1;
      const near = rowAt(i);
      const far = rowAt(y & 1 ? i + 1 : i - 1);
      const bias = y & 1 ? 2 : 1;
      for (let x = 0; x < dw; x++) out[x] = (src[near + x] * 3 + src[far + x] + bias) >> 2;
    };
  } else if (fh === 2 && fv === 2 && dw > 2) {
    load = (y) => {
      const i = y >> 1;
      const near = rowAt(i);
      const far = rowAt(y & 1 ? i + 1 : i - 1);
      let last = src[near] * 3 + src[far];
      let cur = last;
      let next = src[near + 1] * 3 + src[far + 1];
      out[0] = (cur * 4 + 8) >> 4;
      out[1] = (cur * 3 + next + 7) >> 4;
      for (let x = 1; x < dw - 1; x++) {
        last = cur;
        cur = next;
        next = src[near + x + 1] * 3 + src[far + x + 1];
        out[2 * x] = (cur * 3 + last + 8) >> 4;
        out[2 * x + 1] = (cur * 3 + next + 7) >> 4;
      }
      out[2 * dw - 2] = (next * 3 + cur + 8) >> 4;
      out[2 * dw - 1] = (next * 4 + 7) >> 4;
    };
  } else {
    // Box replication (libjpeg's h2v1/h2v2 plain upsample and int_upsample).
    load = (y) => {
      const p = rowAt(Math.floor(y / fv));
      for (let x = 0; x < dw; x++) out.fill(src[p + x], x * fh, x * fh + fh);
    };
  }
  return { samples: out, offset: 0, load };
}

function hex(n: number): string {
  return n.toString(16).toUpperCase().padStart(2, '0');
}

function ascii(b: Uint8Array, n: number): string {
  return String.fromCharCode(...b.subarray(0, n));
}
