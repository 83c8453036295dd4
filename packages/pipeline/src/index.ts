export { PipelineError } from './errors.js';
export { NO_ADAPTERS, officialAdapterModules, UNET_ADAPTERS, VAE_ADAPTER, type AdapterModules } from './adapters.js';
export {
  checkpointFromOfficial,
  checkpointFromSafetensors,
  checkpointMetadata,
  CHECKPOINT_METADATA_KEY,
  DEFAULT_LORA_ALPHA,
  type CodiffCheckpoint,
} from './checkpoint.js';
export { CodiffGenerator, CODIFF_TIMESTEP, type UNetTraining, type GeneratorParts, type GeneratorOptions, type GenerateOptions, type GeneratorOutput } from './generator.js';
export { latentTiles, gaussianTileWeights, tiledPrediction, LATENT_TILE, LATENT_OVERLAP, type LatentTiles, type TilingOptions } from './tiling.js';
export {
  adainColorFix,
  waveletColorFix,
  waveletDecomposition,
  channelMeanStd,
  officialUint8,
  toUint8,
  COLOR_FIXES,
  type ColorFix,
} from './colorfix.js';
export { restoreImage, deblocksByDefault, postFilterSmoothed, type Pixels, type RestoreOptions, type RestoreStage } from './restore.js';
export { smoothBlockEdges, blockEdgeRatio, ALIGNED_GRID, type GridPhase, type BlockEdgeSmoothing } from './deblock.js';
export {
  LumaPostFilter,
  LumaPostFilterFit,
  readLumaPostFilter,
  lumaPostFilterFromBytes,
  POST_FILTER_FILE,
  POST_FILTER_CLASSES,
  POST_FILTER_FEATURES,
  type PostFilterSolveOptions,
} from './postfilter.js';
export { Discriminator, DISCRIMINATOR_TIMESTEP } from './discriminator.js';
export { tiledEncoder, tiledDecoder, vaeTiles, VAE_ENCODER_TILE, VAE_DECODER_TILE, type TiledVaeOptions } from './tiled-vae.js';
export {
  PixelUnshuffleAutoencoder,
  pixelUnshuffleConfig,
  PIXEL_UNSHUFFLE_CLASS,
  type PixelUnshuffleConfig,
} from './pixel-unshuffle.js';
export {
  loadModelFolder,
  findModelFiles,
  readCodiffCheckpointFrom,
  loadLatentAutoencoderFrom,
  CHECKPOINT_NAMES,
  CAVE_NAMES,
  STAND_IN_MODEL_FILES,
  OPTIONAL_MODEL_FILES,
  type ModelFolderOptions,
} from './model-files.js';
