import { crop, degrade, toGrey, type RawImage } from '@codiff/jpeg-codec';
import { greyToRgb } from '@codiff/image-io';
import type { Rng } from './rng.js';
import type { GridShift } from '@codiff/losses';

/** The random choices behind one training pair, in the order the official `DatasetJPEG` draws them. */
export interface SampleRecipe {
  /** Top-left of the (patch + 8)² crop. */
  readonly top: number;
  readonly left: number;
  /** Dihedral transform 0..7, as KAIR's `augment_img`. */
  readonly mode: number;
  /** JPEG quality of the low-quality side. */
  readonly quality: number;
  /** Offset of the final patch inside the compressed crop (0, 0 keeps the 8×8 grid aligned). */
  readonly shiftTop: number;
  readonly shiftLeft: number;
  /** A grey sample (not in the official set): the crop's luma and a grey JPEG of it, as Classic5's. */
  readonly grey?: boolean;
}

/** The official QF set that 75 % of the samples draw from. */
export const COMMON_QUALITIES = [10, 20, 30, 40, 50, 60] as const;

/**
 * Draw a recipe as the official training set does for a `width`×`height` photo: crop (patch + 8)², mode 0..7,
 * QF uniform on 8..96 with probability .25 else from {10,…,60}, and with probability .5 a final crop offset in
 * 0..8 on each axis (a shifted 8×8 grid). With `greyFraction` > 0, one more draw after those makes that share of
 * the samples grey (with 0 the draws are the official ones).
 */
export function drawRecipe(rng: Rng, width: number, height: number, patch: number, greyFraction = 0): SampleRecipe {
  const top = rng.randint(0, height - patch - 8);
  const left = rng.randint(0, width - patch - 8);
  const mode = rng.randint(0, 7);
  const quality = rng.random() > 0.75 ? rng.randint(8, 96) : rng.choice(COMMON_QUALITIES);
  const shifted = rng.random() > 0.5;
  const shiftTop = shifted ? rng.randint(0, 8) : 0;
  const shiftLeft = shifted ? rng.randint(0, 8) : 0;
  const recipe = { top, left, mode, quality, shiftTop, shiftLeft };
  return greyFraction > 0 ? { ...recipe, grey: rng.random() < greyFraction } : recipe;
}

/** A high-quality patch and its JPEG-compressed counterpart, both RGB `patch`×`patch`, 8-bit interleaved (grey as three equal channels). */
export interface TrainingPair {
  readonly hq: Uint8Array;
  readonly lq: Uint8Array;
  readonly quality: number;
  /** The patch's offset [top, left] from the JPEG's 8×8 grid: block edges lie before rows y with (y + top) % 8 = 0. */
  readonly gridShift: GridShift;
}

/** A batch of training pairs, NHWC RGB in [0, 1], with each sample's JPEG quality. */
export interface PairBatch {
  readonly hq: Float32Array;
  readonly lq: Float32Array;
  readonly quality: number[];
  readonly gridShift: GridShift[];
  readonly size: number;
  readonly patch: number;
}

/** Stack `patch`×`patch` pairs into one batch, 8-bit values scaled to [0, 1]. */
export function batchOf(pairs: readonly TrainingPair[], patch: number): PairBatch {
  const size = patch * patch * 3;
  const hq = new Float32Array(pairs.length * size), lq = new Float32Array(pairs.length * size);
  pairs.forEach((pair, i) => {
    for (let k = 0; k < size; k++) {
      hq[i * size + k] = pair.hq[k] / 255;
      lq[i * size + k] = pair.lq[k] / 255;
    }
  });
  return { hq, lq, quality: pairs.map((p) => p.quality), gridShift: pairs.map((p) => p.gridShift), size: pairs.length, patch };
}

/**
 * Apply a recipe to an RGB photo: crop, dihedral transform (and luma, for a grey recipe), JPEG round trip of the
 * whole crop, final patch crop.
 */
export function makePair(photo: RawImage, recipe: SampleRecipe, patch: number): TrainingPair {
  if (photo.channels !== 3) throw new RangeError(`makePair takes RGB photos (got ${photo.channels} channels)`);
  const size = patch + 8;
  const cropped = dihedral(crop(photo, recipe.left, recipe.top, size, size), recipe.mode);
  const hq = recipe.grey ? toGrey(cropped) : cropped;
  const lq = degrade(hq, { quality: recipe.quality });
  // Grey as three equal channels, as the pipeline restores a grey JPEG.
  const final = (image: RawImage) => greyToRgb(crop(image, recipe.shiftLeft, recipe.shiftTop, patch, patch)).data as Uint8Array;
  return { hq: final(hq), lq: final(lq), quality: recipe.quality, gridShift: [recipe.shiftTop, recipe.shiftLeft] };
}

/**
 * KAIR's `augment_img` modes: 0 identity, 1 flipud∘rot90, 2 flipud, 3 rot270, 4 flipud∘rot180, 5 rot90,
 * 6 rot180, 7 flipud∘rot270 (numpy's rot90: counter-clockwise in the image plane).
 */
export function dihedral(image: RawImage, mode: number): RawImage {
  const rotations = [0, 1, 0, 3, 2, 1, 2, 3][mode];
  const flip = [false, true, true, false, true, false, false, true][mode];
  if (rotations === undefined) throw new RangeError(`dihedral mode must be 0..7 (got ${mode})`);
  let out = image;
  for (let k = 0; k < rotations; k++) out = rot90(out);
  return flip ? flipud(out) : out;
}

/** numpy.rot90(m): out[i][j] = m[j][W−1−i], shape W×H. */
function rot90(m: RawImage): RawImage {
  const { width: w, height: h, channels: c } = m;
  const data = new Uint8Array(m.data.length);
  for (let i = 0; i < w; i++) {
    for (let j = 0; j < h; j++) {
      const src = (j * w + (w - 1 - i)) * c;
      const dst = (i * h + j) * c;
      for (let k = 0; k < c; k++) data[dst + k] = m.data[src + k];
    }
  }
  return { width: h, height: w, channels: c, data };
}

function flipud(m: RawImage): RawImage {
  const row = m.width * m.channels;
  const data = new Uint8Array(m.data.length);
  for (let y = 0; y < m.height; y++) data.set(m.data.subarray((m.height - 1 - y) * row, (m.height - y) * row), y * row);
  return { ...m, data };
}
