// Node-only: stage 2 (the CODiff generator) as a training task over photo folders.
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { loadCave } from '@codiff/cave/node';
import type { PerceptualModels } from '@codiff/eval';
import { loadDists, loadLpipsSqueeze } from '@codiff/losses/node';
import { ParameterGroup } from '@codiff/nn';
import { CodiffGenerator, Discriminator, PixelUnshuffleAutoencoder, pixelUnshuffleConfig } from '@codiff/pipeline';
import { loadCodiffFolder, readCodiffCheckpoint, saveCodiffCheckpoint, saveCodiffModel } from '@codiff/pipeline/node';
import { UNet2DConditionModel, unetConfigFromDiffusers } from '@codiff/sd-unet';
import { loadUNet, loadVae } from '@codiff/sd-unet/node';
import { validateStage2Config, type Stage2Config } from './config.js';
import { readConfigFile } from './config-files.js';
import { centrePairs, PairLoader, scanPhotoFolder, type SkippedFile } from './data.js';
import { TrainError } from './errors.js';
import { initDiscriminator, initGenerator } from './init.js';
import { readValidationPhotos, validateOnPhotos, type ValidationPhoto } from './photo-validation.js';
import { Rng } from './rng.js';
import type { PairBatch } from './samples.js';
import { discriminatorLosses, generatorLosses, realLatents, type PerceptualDistance, type Stage2Batch } from './stage2.js';
import { stageTrainerOptions, train, type TrainProgress, type TrainSummary, type TrainingTask } from './trainer.js';

/** The configurations shipped in `configs/` (stage2-<name>.json). */
export const STAGE2_CONFIG_NAMES = ['official', 'tiny', 'lite', 'lite-anneal'] as const;

/** A named configuration (STAGE2_CONFIG_NAMES) or a path to a JSON file of the same shape. */
export async function loadStage2Config(nameOrPath: string): Promise<Stage2Config> {
  return readConfigFile('stage2', STAGE2_CONFIG_NAMES, nameOrPath, validateStage2Config);
}

export interface Stage2RunOptions {
  readonly config: Stage2Config;
  readonly data: string;
  readonly val?: string;
  readonly out: string;
  /** Stable Diffusion 2.1-base as a diffusers folder (`unet/`, `vae/`); not for a config with `model` (trained from scratch). */
  readonly sd?: string;
  /** CaVE weights (a stage-1 run's cave.safetensors, or the official cave.pth): frozen, it supplies the tokens. */
  readonly cave: string;
  /**
   * The perceptual network's weights: for DISTS a folder with `vgg16.safetensors` and `dists_weights.safetensors`;
   * for LPIPS-squeeze one laid out as `../shared/weights` (`squeezenet1_1/features.safetensors`, `lpips/squeeze.safetensors`).
   */
  readonly perceptualWeights: string;
  /**
   * Start a new run from trained weights: for an SD-based configuration a CODiff checkpoint (model.pkl or
   * codiff.safetensors) instead of LoRA B = 0; for a from-scratch one a model folder (a run's `model/`, or
   * @codiff/model-lite's) whose UNet and projection replace the fresh ones. Its CaVE is not used: `cave` is.
   */
  readonly init?: string;
  readonly resume?: boolean;
  readonly workers?: number;
  readonly signal?: AbortSignal;
  readonly onProgress?: (p: TrainProgress) => void;
  readonly onLog?: (line: string) => void;
}

/** The JPEG qualities of the validation patches. */
export const STAGE2_VALIDATION_QUALITIES = [10, 30, 50] as const;

/** A micro-batch, and the generator's latents the discriminator then sees as fake. */
type Micro = Stage2Batch & { fake?: tf.Tensor4D };

/** The perceptual term's network, also as the model that validation on whole photos reports. */
type Perceptual = PerceptualDistance & { readonly models: PerceptualModels; dispose(): void };

async function loadPerceptual(kind: Stage2Config['perceptual'], dir: string): Promise<Perceptual> {
  if (kind === 'dists') {
    const dists = await loadDists(join(dir, 'vgg16.safetensors'), join(dir, 'dists_weights.safetensors'));
    return { score: (a, b) => dists.score(a, b), models: { dists }, dispose: () => (dists.vgg.dispose(), dists.dispose()) };
  }
  const lpips = await loadLpipsSqueeze(join(dir, 'squeezenet1_1/features.safetensors'), join(dir, 'lpips/squeeze.safetensors'));
  return { score: (a, b) => lpips.score(a, b), models: { lpips }, dispose: () => (lpips.trunk.dispose(), lpips.dispose()) };
}

/** N(0, 1) noise for micro-batch `index`: a pure function of (seed, stream, index), so a resumed run draws the same. */
function seededNoise(seed: number, stream: number, index: number, shape: [number, number, number, number]): tf.Tensor4D {
  const rng = Rng.derive(seed, stream, index);
  return tf.tensor4d(Float32Array.from({ length: shape.reduce((a, d) => a * d, 1) }, () => rng.normal()), shape);
}

/**
 * Train the CODiff generator (stage 2) as `main_train_codiff.py`: SD 2.1's UNet and VAE with LoRA, conv_in and proj
 * trained, CaVE frozen; MSE + perceptual + GAN with a latent discriminator stepped after each generator step. Writes
 * `codiff.safetensors` (the official checkpoint's tensors) with every checkpoint. A configuration with `model`
 * (codiff-lite) trains its UNet from scratch on the pixel-unshuffle stand-in and writes a model folder `model/`.
 */
export async function trainStage2(options: Stage2RunOptions): Promise<TrainSummary & { skipped: number }> {
  const { config } = options;
  const p = config.patch;
  const { photos, skipped } = await scanPhotoFolder(options.data, p + 8);
  const report = (f: SkippedFile) => options.onLog?.(`skipped ${f.path}: ${f.reason}`);
  skipped.forEach(report);
  if (photos.length === 0) throw new TrainError(`${options.data}: no usable photos (PNG/JPEG at least ${p + 8}×${p + 8}; ${skipped.length} file(s) skipped)`);
  if (options.init && options.resume) throw new TrainError('--init starts a new run; --resume continues one: give one of them');
  if (!config.model && !options.sd) throw new TrainError(`configuration ${config.name} fine-tunes Stable Diffusion 2.1-base: give its diffusers folder (--sd)`);
  if (config.model && options.sd) throw new TrainError(`configuration ${config.name} trains its UNet from scratch on the pixel-unshuffle stand-in: it takes no --sd`);
  const validation = options.val ? await readValidation(options.val, config, options.onLog) : undefined;
  const owned: { dispose(): void }[] = [];
  try {
    const perceptual = await loadPerceptual(config.perceptual, options.perceptualWeights);
    owned.push(perceptual);
    const cave = await loadCave(options.cave);
    owned.push(cave);
    const scratch = config.model && unetConfigFromDiffusers(config.model.unet);
    const unet = scratch ? new UNet2DConditionModel(scratch) : await loadUNet(join(options.sd!, 'unet'));
    owned.push(unet);
    const vae = config.model ? new PixelUnshuffleAutoencoder(pixelUnshuffleConfig(config.model.pixelUnshuffle)) : await loadVae(join(options.sd!, 'vae'));
    owned.push(vae);
    const g = new CodiffGenerator(
      { unet, vae, cave },
      config.model ? { training: 'full', residual: config.model.residual } : { rankUnet: config.rankUnet, rankVae: config.rankVae, loraAlpha: config.loraAlpha },
    );
    owned.splice(0, owned.length, perceptual, g);
    initGenerator(g, config.seed);
    if (options.init && config.model) await initFromModelFolder(g, options.init);
    else if (options.init) g.loadCheckpoint(await readCodiffCheckpoint(options.init));
    let disc: Discriminator | undefined;
    if (config.gan) {
      disc = new Discriminator(await loadUNet(join(options.sd!, 'unet'), { encoderOnly: true }));
      owned.push(disc);
      initDiscriminator(disc, config.seed);
    }
    const latentShape = (b: number): [number, number, number, number] => [b, p / g.pixelsPerLatent, p / g.pixelsPerLatent, vae.config.latentChannels];
    const loader = new PairLoader({ photos, patch: p, batchSize: config.batchSize, seed: config.seed, greyFraction: config.greyFraction, workers: options.workers, onSkip: (f) => (skipped.push(f), report(f)) });
    const task: TrainingTask<Micro> = {
      stage: 'stage2',
      model: new ParameterGroup(g.trainableParameters()),
      async batch(index) {
        const b = await loader.batch(index);
        return {
          lq: tf.tensor4d(b.lq, [b.size, p, p, 3]),
          hq: tf.tensor4d(b.hq, [b.size, p, p, 3]),
          noise: config.latent === 'sample' ? seededNoise(config.seed, 3, index, latentShape(b.size)) : undefined,
          realNoise: seededNoise(config.seed, 4, index, latentShape(b.size)),
          gridShifts: b.gridShift,
        };
      },
      losses(batch) {
        const l = generatorLosses(g, perceptual, disc, batch, { weights: config.weights, ganGradient: config.ganGradient });
        batch.fake = tf.keep(l.latents);
        return { total: l.total, mse: l.mse, perceptual: l.perceptual, gan: l.gan, ...(l.blockEdges && { blockEdges: l.blockEdges }) };
      },
      adversary: disc && {
        model: new ParameterGroup(disc.trainableParameters()),
        losses(batch) {
          const l = discriminatorLosses(disc, realLatents(g, batch.hq, batch.realNoise), batch.fake!, config.weights);
          return { total: l.total, bce: l.unweighted };
        },
      },
      disposeBatch: (batch) => tf.dispose([batch.lq, batch.hq, batch.noise, batch.realNoise, batch.fake].filter((t): t is tf.Tensor4D => t !== undefined)),
      validate: validation && (() => ('patches' in validation ? validateStage2(g, validation.patches, config.batchSize) : validatePhotos(g, validation.photos, perceptual.models, options.onLog))),
      exportModel: async (dir) => (config.model ? saveCodiffModel(g, join(dir, 'model')) : saveCodiffCheckpoint(await g.toCheckpoint(), join(dir, 'codiff.safetensors'))),
    };
    try {
      const summary = await train(task, stageTrainerOptions(config, options));
      return { ...summary, skipped: skipped.length };
    } finally {
      await loader.close();
    }
  } finally {
    for (const m of owned) m.dispose();
  }
}

/**
 * A from-scratch generator's UNet and projection from a model folder, read by the pipeline's own loader (so F16 and
 * every file it needs are handled as `codiff restore` does), strictly: a folder of another configuration is named by
 * its first mismatched tensor, a missing file by its path.
 */
async function initFromModelFolder(g: CodiffGenerator, folder: string): Promise<void> {
  const fail = (why: string): never => {
    throw new TrainError(`--init ${folder}: ${why}`);
  };
  if (!(await stat(folder).catch(() => undefined))?.isDirectory()) fail('a from-scratch configuration starts from a model folder (unet/, codiff.safetensors), such as a run’s model/ or @codiff/model-lite’s');
  let trained: CodiffGenerator | undefined;
  try {
    trained = await loadCodiffFolder(folder);
    if (trained.residual !== g.residual) fail(`its generator has residual = ${trained.residual}, the configuration ${g.residual}`);
    const unet = await trained.unet.stateDict();
    g.unet.checkStateDict(unet);
    g.loadCheckpoint(await trained.toCheckpoint());
    g.unet.loadStateDict(unet);
  } catch (e) {
    if (e instanceof TrainError) throw e;
    fail((e as Error).message);
  } finally {
    trained?.dispose();
  }
}

/** The validation data `config.validation` names: centre patches (default) or the photos whole. */
async function readValidation(dir: string, config: Stage2Config, onLog?: (line: string) => void): Promise<{ patches: PairBatch } | { photos: ValidationPhoto[] }> {
  if (config.validation === 'photos') return { photos: await readValidationPhotos(dir, undefined, onLog) };
  return { patches: await centrePairs(dir, config.patch, STAGE2_VALIDATION_QUALITIES, onLog) };
}

/** Whole-photo validation, announced first: it takes tens of seconds, in which the step count does not move. */
function validatePhotos(g: CodiffGenerator, photos: ValidationPhoto[], models: PerceptualModels, onLog?: (line: string) => void): Promise<Record<string, number>> {
  const jpegs = photos.reduce((n, p) => n + p.jpegs.length, 0);
  onLog?.(`validating: restoring ${photos.length} photos whole (${jpegs} JPEGs)`);
  return validateOnPhotos(g, photos, models);
}

/** Restoration of the validation pairs with the mean latent: MSE and PSNR (RGB, [0, 1]) against the originals. */
async function validateStage2(g: CodiffGenerator, v: PairBatch, batchSize: number): Promise<Record<string, number>> {
  const p = v.patch, size = p * p * 3, n = v.quality.length;
  let mse = 0, psnr = 0;
  for (let s = 0; s < n; s += batchSize) {
    const b = Math.min(batchSize, n - s);
    const perImage = tf.tidy(() => {
      const restored = tf.add(tf.mul(g.forward(tf.tensor4d(v.lq.subarray(s * size, (s + b) * size), [b, p, p, 3])).image, 0.5), 0.5);
      return tf.mean(tf.squaredDifference(restored, tf.tensor4d(v.hq.subarray(s * size, (s + b) * size), [b, p, p, 3])), [1, 2, 3]);
    });
    for (const e of await perImage.data()) {
      mse += e;
      psnr += -10 * Math.log10(Math.max(e, 1e-10));
    }
    perImage.dispose();
  }
  return { mse: mse / n, psnr: psnr / n };
}
