// Block-edge smoothing of a restored image: the steps it still has across the JPEG's 8×8 grid, taken down to the
// level of its steps inside blocks. Pure TypeScript over 8-bit pixels (no TF.js): it runs after the model.
import { PipelineError } from './errors.js';
import type { Pixels } from './restore.js';

const BLOCK = 8;

/** Where the grid's block edges lie: before the columns x with x % 8 = `left` and the rows y with y % 8 = `top`. */
export interface GridPhase {
  readonly top: number;
  readonly left: number;
}

/** A decoded JPEG file's own grid: block edges before every eighth row and column from the top-left pixel. */
export const ALIGNED_GRID: GridPhase = { top: 0, left: 0 };

/** What `smoothBlockEdges` did: the grid it smoothed and its strength (0: the image came back unchanged). */
export interface BlockEdgeSmoothing {
  readonly image: Pixels;
  readonly grid: GridPhase;
  readonly strength: number;
}

/** BT.601 luma as floats (a grey image's own values): the channel the blocking is measured on. */
export function luma(image: Pixels): Float64Array {
  const { width, height, channels, data } = image;
  const y = new Float64Array(width * height);
  if (channels === 1) y.set(data);
  else for (let i = 0; i < y.length; i++) y[i] = 0.299 * data[3 * i] + 0.587 * data[3 * i + 1] + 0.114 * data[3 * i + 2];
  return y;
}

/**
 * One pass of the edge filter along one axis of a planar image (`lines` lines of `length` samples, `stride` apart
 * along a line, `step` between lines). At each block edge p, with a, b | c, d the samples p − 2 .. p + 1: the step
 * c − b beyond the mean of its neighbours' steps, Δ = (c − b) − ((b − a) + (d − c)) / 2, is shrunk by ⅔·s·Δ, b and
 * c each moving s·Δ / 3.
 */
function filterAxis(plane: Float64Array, length: number, lines: number, stride: number, step: number, phase: number, s: number): void {
  for (let line = 0; line < lines; line++) {
    const o = line * step;
    for (let p = phase < 2 ? phase + BLOCK : phase; p + 1 < length; p += BLOCK) {
      const a = plane[o + (p - 2) * stride], b = plane[o + (p - 1) * stride], c = plane[o + p * stride], d = plane[o + (p + 1) * stride];
      const excess = c - b - (b - a + (d - c)) / 2;
      plane[o + (p - 1) * stride] = b + (s * excess) / 3;
      plane[o + p * stride] = c - (s * excess) / 3;
    }
  }
}

/** Both passes (columns, then rows) on a copy of one plane. */
function filtered(plane: Float64Array, w: number, h: number, grid: GridPhase, s: number): Float64Array {
  const out = plane.slice();
  filterAxis(out, w, h, 1, w, grid.left, s);
  filterAxis(out, h, w, w, 1, grid.top, s);
  return out;
}

/** A grid phase's rows and columns are integers 0..7, or a named error. */
export function checkGrid(grid: GridPhase): void {
  for (const [name, v] of Object.entries(grid)) {
    if (!Number.isInteger(v) || v < 0 || v >= BLOCK) throw new PipelineError(`grid ${name} must be an integer 0..7 (got ${v})`);
  }
}

/**
 * An image's luma: mean squared step across the grid's block edges over the mean squared step between all other
 * neighbours (both axes). About 1 for an uncompressed photo, well above 1 for a blocky JPEG; `smoothBlockEdges`
 * takes it down to at most 1.
 */
export function blockEdgeRatio(image: Pixels, grid: GridPhase = ALIGNED_GRID): number {
  return planeEdgeRatio(luma(image), image.width, image.height, grid);
}

/** `blockEdgeRatio` of one plane. */
function planeEdgeRatio(plane: Float64Array, w: number, h: number, grid: GridPhase): number {
  let edge = 0, edgePairs = 0, inner = 0, innerPairs = 0;
  for (let r = 0; r < h; r++) {
    for (let c = 1; c < w; c++) {
      const d = (plane[r * w + c] - plane[r * w + c - 1]) ** 2;
      if (c % BLOCK === grid.left) (edge += d), edgePairs++;
      else (inner += d), innerPairs++;
    }
    if (r === 0) continue;
    const isEdge = r % BLOCK === grid.top;
    for (let c = 0; c < w; c++) {
      const d = (plane[r * w + c] - plane[(r - 1) * w + c]) ** 2;
      if (isEdge) (edge += d), edgePairs++;
      else (inner += d), innerPairs++;
    }
  }
  if (edgePairs === 0 || innerPairs === 0) return 1;
  // Flat blocks with steps between them (a JPEG of DC terms alone): all blocking.
  if (inner === 0) return edge > 0 ? Infinity : 1;
  return edge / edgePairs / (inner / innerPairs);
}

/**
 * Smooth a restored image's block edges, no more than needed: the smallest strength s in [0, 1] at which its luma's
 * mean squared step across the grid's edges is no larger than inside blocks (as in an uncompressed photo, where the
 * two are equal on average), then that filter on every channel. `grid`: where the JPEG's grid lies (a decoded JPEG
 * file's own is aligned; a crop moves it). It is not guessed from the pixels: at QF 40 and above, the strongest
 * phase of the steps is as often the photo's own (Kodak's scans have one at rows 7 mod 8) as the grid's. A
 * restoration that keeps steps at the edges keeps the visible blocking that PSNR-B's blocking factor counts; one
 * without any comes back unchanged.
 */
export function smoothBlockEdges(restored: Pixels, grid: GridPhase = ALIGNED_GRID): BlockEdgeSmoothing {
  const { width: w, height: h, channels } = restored;
  if (restored.data.length !== w * h * channels) throw new PipelineError(`pixel buffer of ${restored.data.length} bytes does not hold ${w}×${h}×${channels}`);
  checkGrid(grid);
  const y = luma(restored);
  const excess = (s: number) => planeEdgeRatio(filtered(y, w, h, grid, s), w, h, grid) - 1;
  const atZero = excess(0);
  if (atZero <= 0) return { image: restored, grid, strength: 0 };
  // The excess falls smoothly as s grows: regula falsi (Illinois: the end kept twice has its weight halved), keeping s
  // where the ratio is at most 1, until it is within 1 % of 1 or s within a hundredth: about 4 passes over the luma
  // where bisection takes 8.
  let low = 0, high = 1, atHigh = excess(1);
  let [weightLow, weightHigh] = [atZero, atHigh];
  for (let kept = 0, pass = 0; atHigh < -0.01 && high - low > 0.01 && pass < 12; pass++) {
    // Flat blocks make the ratio infinite at s = 0: halve the interval until the low end is finite.
    const s = Number.isFinite(weightLow) ? (low * weightHigh - high * weightLow) / (weightHigh - weightLow) : (low + high) / 2;
    const at = excess(s);
    if (at > 0) {
      [low, weightLow] = [s, at];
      if (kept === -1) weightHigh /= 2;
      kept = -1;
    } else {
      [high, atHigh, weightHigh] = [s, at, at];
      if (kept === 1) weightLow /= 2;
      kept = 1;
    }
  }
  // Still above 1 at full strength: full strength.
  const strength = high;
  const data = new Uint8Array(restored.data.length);
  const plane = new Float64Array(w * h);
  for (let ch = 0; ch < channels; ch++) {
    for (let i = 0; i < plane.length; i++) plane[i] = restored.data[i * channels + ch];
    const out = filtered(plane, w, h, grid, strength);
    for (let i = 0; i < plane.length; i++) data[i * channels + ch] = Math.min(255, Math.max(0, Math.round(out[i])));
  }
  return { image: { width: w, height: h, channels, data }, grid, strength };
}
