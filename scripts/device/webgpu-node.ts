// First import of each device bundle: Dawn's WebGPU installed as navigator.gpu before TF.js's WebGPU backend loads
// (it registers only if WebGPU is there when it is imported).
import { create, globals } from 'webgpu';

Object.assign(globalThis, globals);
Object.defineProperty(globalThis, 'navigator', { value: { gpu: create([]) }, configurable: true });
await import('@tensorflow/tfjs-backend-webgpu');
