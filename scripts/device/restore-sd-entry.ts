// The restore benchmark (packages/pipeline/bench/restore-sd.ts) on Dawn's WebGPU.
import './webgpu-node.js';

await import('../../packages/pipeline/bench/restore-sd.js');
