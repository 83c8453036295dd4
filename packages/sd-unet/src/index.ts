export { ResnetBlock2D, type ResnetOptions } from './resnet.js';
export { Attention, type AttentionOptions } from './attention.js';
export { Downsample2D, Upsample2D } from './sampling.js';
export {
  AutoencoderKL,
  VaeEncoder,
  VaeDecoder,
  SD21_VAE_CONFIG,
  vaeConfigFromDiffusers,
  type AutoencoderKLConfig,
  type LatentDistribution,
} from './vae.js';
export { BasicTransformerBlock, Transformer2DModel } from './transformer.js';
export {
  UNet2DConditionModel,
  SD21_UNET_CONFIG,
  unetConfigFromDiffusers,
  unetConfigToDiffusers,
  timestepFeatures,
  type UNetConfig,
} from './unet.js';
export { alphasCumprod, oneStepCoefficients } from './schedule.js';
export { loadUNetFrom, loadVaeFrom, renameLegacyVaeKey, type LoadOptions, type UNetLoadOptions } from './load.js';
