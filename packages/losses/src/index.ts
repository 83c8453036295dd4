export { Vgg16Features, VGG16_STAGE_CHANNELS, type VggPooling } from './vgg.js';
export { Dists } from './dists.js';
export { Lpips, type LpipsResult, type LpipsTrunk } from './lpips.js';
export { SqueezeNetFeatures } from './squeezenet.js';
export { torchMaxPool } from './pooling.js';
export { sobelMagnitude, edgeAwareDists } from './edge.js';
export { discriminatorLoss, generatorLoss } from './gan.js';
export { blockEdgeMse, type GridShift } from './blocking.js';
