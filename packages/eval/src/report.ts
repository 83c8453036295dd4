import type { RawImage } from '@codiff/jpeg-codec';
import type { Scores } from './measure.js';

/** One image at one quality, one method: `jpeg` (the input itself), a compared method, or the restorer. */
export interface ResultRow extends Scores {
  readonly set: string;
  readonly image: string;
  readonly qf: number;
  readonly method: string;
  /** Bits per pixel of the JPEG (on the `jpeg` rows). */
  readonly bpp?: number;
  /** Seconds the method took on this image. */
  readonly seconds?: number;
}

const METRICS = ['psnr', 'ssim', 'psnrB', 'lpips', 'lpipsVgg', 'dists', 'bpp', 'seconds'] as const;
type Metric = (typeof METRICS)[number];
const HEADINGS: Record<Metric, string> = {
  psnr: 'PSNR-Y',
  ssim: 'SSIM-Y',
  psnrB: 'PSNR-B',
  lpips: 'LPIPS-squeeze',
  lpipsVgg: 'LPIPS-vgg',
  dists: 'DISTS',
  bpp: 'bpp',
  seconds: 's/image',
};
const DIGITS: Record<Metric, number> = { psnr: 2, ssim: 4, psnrB: 2, lpips: 4, lpipsVgg: 4, dists: 4, bpp: 3, seconds: 2 };

/** The metrics present in at least one row, in a fixed order. */
const present = (rows: readonly ResultRow[]) => METRICS.filter((m) => rows.some((r) => r[m] !== undefined));

/** A number for CSV/JSON: infinities as "inf"/"-inf" (identical images), never null. */
const cell = (v: number | undefined) => (v === undefined ? '' : Number.isFinite(v) ? String(v) : v > 0 ? 'inf' : '-inf');

/** Per-image rows as CSV with a header line. */
export function toCsv(rows: readonly ResultRow[]): string {
  const metrics = present(rows);
  const quote = (s: string) => (/[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);
  const lines = [['set', 'image', 'qf', 'method', ...metrics].join(',')];
  for (const r of rows) lines.push([quote(r.set), quote(r.image), String(r.qf), quote(r.method), ...metrics.map((m) => cell(r[m]))].join(','));
  return `${lines.join('\n')}\n`;
}

export interface SummaryRow extends Partial<Record<Metric, number>> {
  readonly set: string;
  readonly qf: number;
  readonly method: string;
  readonly images: number;
}

/** Means over the images of each set, per quality and method (rows in first-seen order). */
export function summarise(rows: readonly ResultRow[]): SummaryRow[] {
  const groups = new Map<string, ResultRow[]>();
  for (const r of rows) {
    const key = JSON.stringify([r.set, r.qf, r.method]);
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  return [...groups.values()].map((group) => {
    const { set, qf, method } = group[0];
    const out: { -readonly [K in keyof SummaryRow]: SummaryRow[K] } = { set, qf, method, images: group.length };
    for (const m of present(group)) {
      const values = group.map((r) => r[m]).filter((v): v is number => v !== undefined);
      out[m] = values.reduce((s, v) => s + v, 0) / values.length;
    }
    return out;
  });
}

/** One Markdown table per quality: a row per set and method, means over the set's images. */
export function summaryMarkdown(summary: readonly SummaryRow[]): string {
  const metrics = METRICS.filter((m) => summary.some((r) => r[m] !== undefined));
  const out: string[] = [];
  for (const qf of [...new Set(summary.map((r) => r.qf))]) {
    out.push(`## QF ${qf}`, '', `| set | images | method | ${metrics.map((m) => HEADINGS[m]).join(' | ')} |`, `|---|---|---|${metrics.map(() => '---|').join('')}`);
    for (const r of summary.filter((s) => s.qf === qf)) {
      const values = metrics.map((m) => (r[m] === undefined ? '' : Number.isFinite(r[m]) ? r[m]!.toFixed(DIGITS[m]) : 'inf'));
      out.push(`| ${r.set} | ${r.images} | ${r.method} | ${values.join(' | ')} |`);
    }
    out.push('');
  }
  return out.join('\n');
}

/** Side of the contact sheets' centre crops. */
export const CROP_SIZE = 128;

/** A `size`×`size` crop from the centre, as RGB (grey repeated): what a contact sheet shows of an image. */
export function centreCrop(image: RawImage, size = CROP_SIZE): RawImage {
  const w = Math.min(size, image.width);
  const h = Math.min(size, image.height);
  const x0 = (image.width - w) >> 1;
  const y0 = (image.height - h) >> 1;
  const c = image.channels;
  const data = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const s = ((y0 + y) * image.width + x0 + x) * c;
      for (let k = 0; k < 3; k++) data[(y * w + x) * 3 + k] = image.data[s + (c === 1 ? 0 : k)];
    }
  }
  return { width: w, height: h, channels: 3, data };
}

/**
 * Crops side by side so a person can look: one row per image, one column per picture (ground truth, JPEG, then each
 * method, in the order given), `size`-pixel centre crops at 1:1 on a grey background with `gap`-pixel gutters.
 * Pictures may be whole images or crops already (`centreCrop` leaves a crop as it is).
 */
export function contactSheet(rows: readonly (readonly RawImage[])[], size = CROP_SIZE, gap = 4): RawImage {
  const columns = Math.max(...rows.map((r) => r.length));
  const width = columns * (size + gap) + gap;
  const height = rows.length * (size + gap) + gap;
  const data = new Uint8Array(width * height * 3).fill(64);
  rows.forEach((pictures, row) => {
    pictures.forEach((picture, column) => {
      const crop = centreCrop(picture, size);
      const left = gap + column * (size + gap);
      const top = gap + row * (size + gap);
      for (let y = 0; y < crop.height; y++) data.set(crop.data.subarray(y * crop.width * 3, (y + 1) * crop.width * 3), ((top + y) * width + left) * 3);
    });
  });
  return { width, height, channels: 3, data };
}
