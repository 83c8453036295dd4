// Loading the perceptual models' weights from safetensors files (Node). See the README for where to get them.
import { NnError } from '@codiff/nn';
import { readSafetensorsFile } from '@codiff/nn/node';
import { Dists } from './dists.js';
import { Lpips } from './lpips.js';
import { SqueezeNetFeatures } from './squeezenet.js';
import { Vgg16Features } from './vgg.js';

/** Run `load`, prefixing any error with the file it was loading. */
function fromFile(path: string, load: () => void): void {
  try {
    load();
  } catch (e) {
    throw new NnError(`${path}: ${(e as Error).message}`);
  }
}

/**
 * VGG16's trunk from a safetensors file with torchvision keys (`features.<i>.weight/bias`, F32/F16/BF16). Other
 * keys (a full torchvision checkpoint's `classifier.*`) are ignored.
 */
export async function loadVgg16(path: string): Promise<Vgg16Features> {
  const features = await readSafetensorsFile(path, (key) => key.startsWith('features.'));
  const vgg = new Vgg16Features();
  fromFile(path, () => vgg.loadStateDict(features));
  return vgg;
}

/** DISTS from a VGG16 trunk (a path, or one already loaded to share with LPIPS) and its alpha/beta file. */
export async function loadDists(vgg: string | Vgg16Features, weightsPath: string): Promise<Dists> {
  const dists = new Dists(typeof vgg === 'string' ? await loadVgg16(vgg) : vgg);
  const weights = await readSafetensorsFile(weightsPath);
  fromFile(weightsPath, () => dists.loadStateDict(weights));
  return dists;
}

/** LPIPS (VGG, v0.1) from a VGG16 trunk (a path or a loaded one) and its linear heads file. */
export async function loadLpips(vgg: string | Vgg16Features, headsPath: string): Promise<Lpips> {
  const lpips = new Lpips(typeof vgg === 'string' ? await loadVgg16(vgg) : vgg);
  const heads = await readSafetensorsFile(headsPath);
  fromFile(headsPath, () => lpips.loadStateDict(heads));
  return lpips;
}

/** SqueezeNet 1.1's trunk from a safetensors file with torchvision keys (`features.<i>.*`); other keys ignored. */
export async function loadSqueezeNet(path: string): Promise<SqueezeNetFeatures> {
  const features = await readSafetensorsFile(path, (key) => key.startsWith('features.'));
  const net = new SqueezeNetFeatures();
  fromFile(path, () => net.loadStateDict(features));
  return net;
}

/**
 * LPIPS v0.1 `net='squeeze'`: the ImageNet SqueezeNet 1.1 trunk (a path or a loaded one) and the seven linear heads
 * (`lpips/weights/v0.1/squeeze.pth`, converted; keys `lin<k>.model.1.weight`).
 */
export async function loadLpipsSqueeze(trunk: string | SqueezeNetFeatures, headsPath: string): Promise<Lpips> {
  const lpips = new Lpips(typeof trunk === 'string' ? await loadSqueezeNet(trunk) : trunk);
  const heads = await readSafetensorsFile(headsPath);
  fromFile(headsPath, () => lpips.loadStateDict(heads));
  return lpips;
}
