export { NnError, type NnErrorCode } from './errors.js';
export { useBackend, defaultBackend, wasmThreadCount, BACKENDS, type BackendName, type BackendOptions } from './backend.js';
export { conv2dFilterGradient, conv2dInputGradient } from './gradients.js';
export { halfToFloat, floatToHalf, toFloat32, fromFloat32, type FloatDtype, type StoredDtype } from './dtype.js';
export {
  SafetensorsFile,
  bytesSource,
  writeSafetensors,
  parseShardIndex,
  type ByteSource,
  type HostTensor,
  type TensorInfo,
  type TensorToWrite,
} from './safetensors.js';
export {
  bytesFolder,
  subfolder,
  openRequired,
  readFolderFile,
  readFolderJson,
  openCheckpointIn,
  readCheckpointIn,
  loadModuleWeightsFrom,
  readCheckpointSource,
  type ModelFolder,
  type CheckpointFileContents,
} from './folder.js';
export { tfShape, torchToTf, tfToTorch, nchwToNhwc, nhwcToNchw, type ParamLayout } from './layout.js';
export { Module, ModuleList, Parameter, ParameterGroup, withParameterPlacement, type LoadReport, type Init, type Placement } from './module.js';
export { Conv2d, ConvTranspose2d, BatchNorm2d, Linear, GroupNorm, LayerNorm, silu, gelu, type LayerBranch } from './layers.js';
export { scaledDotProductAttention } from './attention.js';
export { matMul, replicatePad, stopGradient } from './ops.js';
export {
  readTorchCheckpoint,
  readTorchCheckpointContents,
  DEFAULT_CHECKPOINT_LIMITS,
  type CheckpointLimits,
  type PlainValue,
  type TorchCheckpointContents,
} from './torch-checkpoint.js';
