// The model's thread: loads codiff-lite (or a user's folder), decodes, restores, degrades. One job at a time; a
// cancel message aborts the running restore between tiles, which frees every tensor it held.
import * as tf from '@tensorflow/tfjs-core';
import { getThreadsCount, setThreadsCount, setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import wasmPlain from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm?url';
import wasmSimd from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm?url';
import wasmThreadedSimd from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-threaded-simd.wasm?url';
import { decodeImage, encodePng, readImageHeader } from '@codiff/image-io';
import { encodeJpeg, readJpegInfo } from '@codiff/jpeg-codec';
import { useBackend } from '@codiff/nn';
import { deblocksByDefault, loadModelFolder, postFilterSmoothed, restoreImage, type CodiffGenerator, type Pixels } from '@codiff/pipeline';
import { folderModel, openSiteModel, type OpenedModel } from './model-store.js';
import type { BackendChoice, FromWorker, Rgba, ToWorker } from './protocol.js';

/** Larger photos are refused with a message: CaVE sees the whole image at once, and a tab's memory is finite. */
const MAX_PIXELS = 16_000_000;

/** This worker's global scope (the package type-checks against the DOM library, whose `postMessage` is a window's). */
const scope = self as unknown as { postMessage(message: FromWorker, transfer: Transferable[]): void; onmessage: ((event: MessageEvent<ToWorker>) => void) | null };
const post = (message: FromWorker, transfer: Transferable[] = []) => scope.postMessage(message, transfer);
const tensors = () => tf.memory().numTensors;

let generator: CodiffGenerator | undefined;
/** The last restore without the post-filter, and its JPEG, where the model has a filter: switching it needs no model run. */
let kept: { id: number; jpeg: Pixels; plain: Pixels } | undefined;
let backend: BackendChoice | undefined;
const running = new Map<number, AbortController>();
/** Jobs run one after another; only 'cancel' is handled at once. */
let queue: Promise<unknown> = Promise.resolve();

scope.onmessage = (event) => {
  const message = event.data;
  if (message.type === 'cancel') {
    running.get(message.id)?.abort(new DOMException('cancelled', 'AbortError'));
    return;
  }
  if (message.type === 'restore') running.set(message.id, new AbortController());
  queue = queue.then(() => handle(message)).catch((e: unknown) => post({ type: 'error', id: 'id' in message ? message.id : undefined, message: describe(e), tensors: tensors() }));
};

async function handle(message: Exclude<ToWorker, { type: 'cancel' }>): Promise<void> {
  switch (message.type) {
    case 'init':
      backend = await startBackend(message.backend);
      return load(await openSiteModel(message.modelUrl, (done, total) => post({ type: 'loading', what: 'model', done, total })));
    case 'load-folder':
      // Also after a failed start (the site's model unreachable): the folder may still be loaded.
      backend ??= await startBackend(undefined);
      return load(folderModel(message.files));
    case 'restore':
      return restore(message.id, message.name, new Uint8Array(message.bytes), message.postFilter);
    case 'degrade':
      return degrade(message.id, new Uint8Array(message.bytes), message.quality);
    case 'post-filter':
      return switchPostFilter(message.id, message.on);
  }
}

async function startBackend(requested: BackendChoice | undefined): Promise<BackendChoice> {
  setWasmPaths({ 'tfjs-backend-wasm.wasm': wasmPlain, 'tfjs-backend-wasm-simd.wasm': wasmSimd, 'tfjs-backend-wasm-threaded-simd.wasm': wasmThreadedSimd });
  if (requested !== 'wasm' && 'gpu' in navigator) {
    try {
      await import('@tensorflow/tfjs-backend-webgpu');
      return (await useBackend('webgpu')) as BackendChoice;
    } catch (e) {
      if (requested === 'webgpu') throw e;
      // No usable adapter: the page says wasm in its badge.
    }
  } else if (requested === 'webgpu') {
    throw new Error('this browser has no WebGPU (navigator.gpu); open the page without ?backend=webgpu to use wasm');
  }
  // TF.js's C++ halves the core count it is told (to skip SMT siblings) and caps its thread pool there: one thread
  // on a 2-core machine. Telling it twice the logical cores gives XNNPACK one thread per core (as @codiff/nn does
  // in Node), which a cross-origin isolated page may use.
  if (crossOriginIsolated) {
    const cores = navigator.hardwareConcurrency;
    Object.defineProperty(Object.getPrototypeOf(navigator), 'hardwareConcurrency', { get: () => 2 * cores, configurable: true });
    setThreadsCount(Math.min(cores, 8));
  }
  return (await useBackend('wasm')) as BackendChoice;
}

async function load(model: OpenedModel): Promise<void> {
  // SD 2.1's UNet does not fit the wasm heap: its weights stay in host memory and are uploaded per layer.
  const next = await loadModelFolder(model.folder, { host: backend === 'wasm' ? 'sd' : false });
  generator?.dispose();
  generator = next;
  kept = undefined;
  const threads = backend === 'wasm' ? getThreadsCount() : undefined;
  post({ type: 'ready', backend: backend!, threads, model: model.name, source: model.source(), bytes: model.bytes, tensors: tensors(), postFilter: offersPostFilter(next) });
}

async function restore(id: number, name: string, bytes: Uint8Array, postFilter: boolean): Promise<void> {
  const signal = running.get(id)!.signal;
  try {
    if (!generator) throw new Error('the model is not loaded yet');
    const image = decodeJpegFile(name, bytes);
    const tables = readJpegInfo(bytes).quality;
    const before = rgba(image);
    post({ type: 'info', id, width: image.width, height: image.height, grey: image.channels === 1, tableQuality: tables, before }, [before.data]);
    const caveQuality = await estimateQuality(generator, image);
    post({ type: 'info', id, width: image.width, height: image.height, grey: image.channels === 1, tableQuality: tables, caveQuality });
    const start = performance.now();
    const plain = await restoreImage(generator, image, { signal, onProgress: (stage, done, total) => post({ type: 'progress', id, stage, done, total }) });
    kept = offersPostFilter(generator) ? { id, jpeg: image, plain } : undefined;
    const restored = postFilter ? keptRestore(id, true) : plain;
    sendRestored(id, 'restore', restored, (performance.now() - start) / 1000);
  } catch (e) {
    if (signal.aborted) post({ type: 'cancelled', id, tensors: tensors() });
    else throw e;
  } finally {
    running.delete(id);
  }
}

// The post-filter runs between two block-edge smoothings, so only a model that smooths by default offers it.
const offersPostFilter = (g: CodiffGenerator | undefined) => g?.postFilter !== undefined && deblocksByDefault(g);

/** The kept restore `id`, with the post-filter or without it. */
function keptRestore(id: number, postFilter: boolean): Pixels {
  if (kept?.id !== id) throw new Error(offersPostFilter(generator) ? 'that photo is no longer kept: restore it again' : 'this model has no post-filter');
  return postFilter ? postFilterSmoothed(generator!.postFilter!, kept.plain, kept.jpeg) : kept.plain;
}

function switchPostFilter(id: number, on: boolean): void {
  const start = performance.now();
  sendRestored(id, 'post-filter', keptRestore(id, on), (performance.now() - start) / 1000);
}

function sendRestored(id: number, step: 'restore' | 'post-filter', restored: Pixels, seconds: number): void {
  const png = encodePng(restored);
  const after = rgba(restored);
  post({ type: 'restored', id, step, png: png.buffer as ArrayBuffer, after, seconds, tensors: tensors() }, [png.buffer as ArrayBuffer, after.data]);
}

/** A JPEG the user gave, decoded upright; anything else gets a message that says what to do. */
function decodeJpegFile(name: string, bytes: Uint8Array): Pixels {
  let header;
  try {
    header = readImageHeader(bytes, { maxPixels: MAX_PIXELS });
  } catch (e) {
    throw new Error(`${name}: ${describe(e)}`);
  }
  if (header.format !== 'jpeg') throw new Error(`${name} is a PNG, not a JPEG: the Degrade tab turns a PNG into a JPEG of any quality`);
  try {
    return decodeImage(bytes, { maxPixels: MAX_PIXELS, orient: true });
  } catch (e) {
    throw new Error(`${name}: ${describe(e)}`);
  }
}

async function estimateQuality(g: CodiffGenerator, image: Pixels): Promise<number> {
  const x = tf.tidy(() => {
    const x01 = tf.div(tf.tensor4d(image.data, [1, image.height, image.width, image.channels], 'float32'), 255);
    return (image.channels === 1 ? tf.tile(x01, [1, 1, 1, 3]) : x01) as tf.Tensor4D;
  });
  try {
    return await g.cave.estimateQuality(x);
  } finally {
    x.dispose();
  }
}

async function degrade(id: number, bytes: Uint8Array, quality: number): Promise<void> {
  const image = decodeImage(bytes, { maxPixels: MAX_PIXELS, orient: true });
  const jpeg = encodeJpeg(image, { quality });
  post({ type: 'degraded', id, jpeg: jpeg.buffer as ArrayBuffer, width: image.width, height: image.height }, [jpeg.buffer as ArrayBuffer]);
}

function rgba(image: Pixels): Rgba {
  const n = image.width * image.height;
  const out = new Uint8ClampedArray(n * 4);
  for (let i = 0; i < n; i++) {
    const s = image.channels === 1 ? i : i * 3;
    out[i * 4] = image.data[s];
    out[i * 4 + 1] = image.data[image.channels === 1 ? s : s + 1];
    out[i * 4 + 2] = image.data[image.channels === 1 ? s : s + 2];
    out[i * 4 + 3] = 255;
  }
  return { width: image.width, height: image.height, data: out.buffer };
}

const describe = (e: unknown) => (e instanceof Error ? e.message : String(e));
