import type { CaveConfig } from '@codiff/cave';
import type { Stage2Weights } from './stage2.js';
import { TrainError } from './errors.js';

/** Optimiser and schedule, with PyTorch's names and meanings. */
export interface OptimizerConfig {
  readonly type: 'adam' | 'adamw';
  readonly lr: number;
  readonly betas?: readonly [number, number];
  readonly eps?: number;
  readonly weightDecay?: number;
  /** MultiStepLR: the lr is multiplied by `gamma` at each milestone step. */
  readonly milestones?: readonly number[];
  readonly gamma?: number;
  /** Global grad-norm clipping (null: none, as the official stage 1). */
  readonly clipGradNorm?: number | null;
}

/** A stage-1 run: the CaVE configuration, data and schedule. Files in `configs/` hold the named ones. */
export interface Stage1Config {
  readonly stage: 'stage1';
  readonly name: string;
  readonly description?: string;
  readonly model: CaveConfig;
  /** Training patch side (the crop is patch + 8 before JPEG); a multiple of 32 (the reconstruction decoder's). */
  readonly patch: number;
  readonly batchSize: number;
  /** Micro-batches per optimiser step (gradient accumulation): the effective batch is batchSize × accumulate. */
  readonly accumulate: number;
  readonly optimizer: OptimizerConfig;
  /** Weight of L1(qf) beside L1(reconstruction); the official 1e-3 when absent. */
  readonly qfLossWeight?: number;
  readonly steps: number;
  readonly checkpointEvery: number;
  readonly validateEvery: number;
  readonly seed: number;
}

/** The lr at optimiser step `step` (1-based) under MultiStepLR. */
export function learningRateAt(o: OptimizerConfig, step: number): number {
  const passed = (o.milestones ?? []).filter((m) => step > m).length;
  return o.lr * (o.gamma ?? 0.1) ** passed;
}

/** A configuration checker that names the file and the first bad field. */
function checker(where: string) {
  const fail = (what: string): never => {
    throw new TrainError(`${where}: ${what}`);
  };
  const positiveInt = (v: unknown, name: string) => (Number.isInteger(v) && (v as number) > 0) || fail(`${name} must be a positive integer (got ${JSON.stringify(v)})`);
  return { fail, positiveInt };
}

/** What every stage's configuration has: its stage, the data/schedule counts, the seed and the optimiser. */
type RunFields = Pick<Stage1Config, 'patch' | 'batchSize' | 'accumulate' | 'steps' | 'checkpointEvery' | 'validateEvery' | 'seed' | 'optimizer'> & { readonly stage: string };

function checkRunFields(c: RunFields, stage: string, { fail, positiveInt }: ReturnType<typeof checker>): void {
  if (c.stage !== stage) fail(`"stage" must be "${stage}" (got ${JSON.stringify(c.stage)})`);
  for (const k of ['patch', 'batchSize', 'accumulate', 'steps', 'checkpointEvery', 'validateEvery'] as const) positiveInt(c[k], k);
  if (!Number.isInteger(c.seed) || c.seed < 0) fail(`seed must be a non-negative integer (got ${JSON.stringify(c.seed)})`);
  if (!c.optimizer || !['adam', 'adamw'].includes(c.optimizer.type)) fail('optimizer.type must be "adam" or "adamw"');
  if (!(c.optimizer.lr > 0)) fail(`optimizer.lr must be positive (got ${JSON.stringify(c.optimizer.lr)})`);
}

/** Check a parsed configuration, naming the first bad field. */
export function validateStage1Config(c: Stage1Config, where: string): Stage1Config {
  const check = checker(where);
  const { fail, positiveInt } = check;
  checkRunFields(c, 'stage1', check);
  if (!c.model || !Array.isArray(c.model.channels) || c.model.channels.length !== 4) fail('"model" needs "channels" (four widths) and "blocks"');
  c.model.channels.forEach((w, i) => positiveInt(w, `model.channels[${i}]`));
  positiveInt(c.model.blocks, 'model.blocks');
  if (c.patch % 32 !== 0) fail(`patch must be a multiple of 32 (got ${c.patch})`);
  if (c.qfLossWeight !== undefined && !(c.qfLossWeight >= 0)) fail(`qfLossWeight must be a non-negative number (got ${JSON.stringify(c.qfLossWeight)})`);
  return c;
}

/**
 * codiff-lite: instead of SD 2.1 with LoRA, a UNet trained from scratch in the latent space of the pixel-unshuffle
 * stand-in for the VAE.
 */
export interface Stage2ModelConfig {
  /** A diffusers UNet2DConditionModel `config.json` (in and out channels: pixelUnshuffle² · 3). */
  readonly unet: Record<string, unknown>;
  /** Side of the pixel blocks the stand-in stacks into latent channels. */
  readonly pixelUnshuffle: number;
  /** The generator's input skip (see @codiff/pipeline's GeneratorOptions.residual), with conv_out starting at zero. */
  readonly residual?: boolean;
}

/**
 * A stage-2 run: LoRA ranks (or the model trained from scratch), losses, data and schedule. Pretrained models come
 * from the command line (folders, files).
 */
export interface Stage2Config {
  readonly stage: 'stage2';
  readonly name: string;
  readonly description?: string;
  /** Train this model from scratch (codiff-lite) instead of LoRA on SD 2.1 (`--sd`). */
  readonly model?: Stage2ModelConfig;
  /** LoRA ranks of the UNet and VAE-encoder adapters and their alpha (official 16, 16, 8); not for `model`. */
  readonly rankUnet?: number;
  readonly rankVae?: number;
  readonly loraAlpha?: number;
  /** Training patch side, a multiple of 8 (the VAE's); the discriminator needs a 3×3 mid-block map (SD: ≥ 192). */
  readonly patch: number;
  readonly batchSize: number;
  readonly accumulate: number;
  readonly optimizer: OptimizerConfig;
  /** The perceptual term: DISTS (official) or LPIPS on SqueezeNet (when no VGG16 is at hand). */
  readonly perceptual: 'dists' | 'lpips-squeeze';
  readonly weights: Stage2Weights;
  /** Train the latent discriminator and add the adversarial term. */
  readonly gan: boolean;
  /** Let the adversarial gradient reach the generator (the paper's description; the official code blocks it). */
  readonly ganGradient: boolean;
  /** The generator's latent: `sample()` of the VAE's distribution (official training) or its mean. */
  readonly latent: 'sample' | 'mean';
  /** Share of grey training samples (luma crop, grey JPEG), 0..1; absent: none, as the official data. */
  readonly greyFraction?: number;
  /**
   * What validation restores: centre 64² patches of the validation photos at QF 10, 30 and 50 (`patches`, the
   * default; mse, psnr), or the photos whole at QF 10 and 30 through `restoreImage`, measured as `codiff eval
   * --protocol full` does (`photos`; PSNR-Y, PSNR-B and the perceptual score per quality). Not part of a run's
   * identity: a resumed run may switch.
   */
  readonly validation?: 'patches' | 'photos';
  readonly steps: number;
  readonly checkpointEvery: number;
  readonly validateEvery: number;
  readonly seed: number;
}

/** Check a parsed stage-2 configuration, naming the first bad field. */
export function validateStage2Config(c: Stage2Config, where: string): Stage2Config {
  const check = checker(where);
  const { fail, positiveInt } = check;
  checkRunFields(c, 'stage2', check);
  if (c.model) {
    if (typeof c.model.unet !== 'object' || c.model.unet === null) fail('model.unet must be a diffusers UNet2DConditionModel configuration');
    positiveInt(c.model.pixelUnshuffle, 'model.pixelUnshuffle');
    if (c.model.residual !== undefined && typeof c.model.residual !== 'boolean') fail('model.residual must be true or false');
    const channels = c.model.pixelUnshuffle ** 2 * 3;
    for (const k of ['in_channels', 'out_channels']) {
      if (c.model.unet[k] !== channels) fail(`model.unet.${k} must be pixelUnshuffle² · 3 = ${channels} (got ${JSON.stringify(c.model.unet[k])})`);
    }
    // The discriminator's body is the pretrained UNet's encoder, frozen: a model trained from scratch has none.
    if (c.gan) fail('a model trained from scratch has no pretrained UNet for the discriminator: set "gan" to false');
    if (c.rankUnet !== undefined || c.rankVae !== undefined || c.loraAlpha !== undefined) fail('a model trained from scratch has no LoRA: drop rankUnet, rankVae and loraAlpha');
  } else {
    for (const k of ['rankUnet', 'rankVae'] as const) positiveInt(c[k], k);
    if (!(c.loraAlpha! > 0)) fail(`loraAlpha must be positive (got ${JSON.stringify(c.loraAlpha)})`);
  }
  if (c.patch % 8 !== 0) fail(`patch must be a multiple of 8 (got ${c.patch})`);
  if (!['dists', 'lpips-squeeze'].includes(c.perceptual)) fail(`perceptual must be "dists" or "lpips-squeeze" (got ${JSON.stringify(c.perceptual)})`);
  if (!c.weights || !['perceptual', 'ganGenerator', 'ganDiscriminator'].every((k) => (c.weights as unknown as Record<string, number>)[k] >= 0)) {
    fail('weights needs non-negative "perceptual", "ganGenerator" and "ganDiscriminator"');
  }
  if (c.weights.blockEdges !== undefined && !(c.weights.blockEdges >= 0)) fail(`weights.blockEdges must be non-negative (got ${JSON.stringify(c.weights.blockEdges)})`);
  if (typeof c.gan !== 'boolean' || typeof c.ganGradient !== 'boolean') fail('"gan" and "ganGradient" must be true or false');
  if (!['sample', 'mean'].includes(c.latent)) fail(`latent must be "sample" or "mean" (got ${JSON.stringify(c.latent)})`);
  if (c.greyFraction !== undefined && !(c.greyFraction >= 0 && c.greyFraction <= 1)) fail(`greyFraction must be in 0..1 (got ${JSON.stringify(c.greyFraction)})`);
  if (c.validation !== undefined && !['patches', 'photos'].includes(c.validation)) fail(`validation must be "patches" or "photos" (got ${JSON.stringify(c.validation)})`);
  return c;
}
