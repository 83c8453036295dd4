export { LoraModel, LoraLayer, matchesTarget, type LoraConfig } from './lora.js';
export { parseLoraTensors, inferConfig, parseAdapterConfig, adapterConfigJson, type LoraTensors } from './formats.js';
export { loadLoraAdapter, savePeftAdapter } from './io.js';
