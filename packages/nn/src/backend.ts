import * as tf from '@tensorflow/tfjs-core';
// cpu and wasm are dependencies of this package: registered statically, so bundlers and test runners resolve them
// against the same tfjs-core as everything else. The optional backends below are loaded on demand.
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import { NnError } from './errors.js';
import { initWasmWithThreads } from './wasm-threads.js';
import { nodeModule } from './node-import.js';

export type BackendName = 'wasm' | 'webgpu' | 'cpu' | 'tensorflow';
export const BACKENDS: readonly BackendName[] = ['wasm', 'webgpu', 'cpu', 'tensorflow'];

const isNode = typeof process !== 'undefined' && !!process.versions?.node;

/** What each backend needs, for the error when it cannot load. */
const REQUIREMENTS: Record<BackendName, string> = {
  wasm: '@tensorflow/tfjs-backend-wasm (a dependency of @codiff/nn)',
  cpu: '@tensorflow/tfjs-backend-cpu (a dependency of @codiff/nn)',
  webgpu: '@tensorflow/tfjs-backend-webgpu, plus in Node the `webgpu` package (Dawn); in a browser, WebGPU support',
  tensorflow: '@tensorflow/tfjs-node or @tensorflow/tfjs-node-gpu (optional; install it yourself)',
};

async function register(name: BackendName): Promise<void> {
  switch (name) {
    case 'cpu':
    case 'wasm':
      return; // registered by the imports above
    case 'webgpu': {
      if (isNode && !(globalThis as { navigator?: { gpu?: unknown } }).navigator?.gpu) {
        const dawn = 'webgpu';
        await probeDawnAdapter(dawn);
        const { create, globals } = (await import(/* @vite-ignore */ dawn)) as {
          create: (flags: string[]) => unknown;
          globals: Record<string, unknown>;
        };
        Object.assign(globalThis, globals);
        Object.defineProperty(globalThis, 'navigator', { value: { gpu: create([]) }, configurable: true });
      }
      const webgpu = '@tensorflow/tfjs-backend-webgpu';
      await import(/* @vite-ignore */ webgpu);
      return;
    }
    case 'tensorflow': {
      const names = ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node'];
      for (const n of names) {
        try {
          await import(/* @vite-ignore */ n);
          return;
        } catch {
          // try the next one
        }
      }
      throw new Error('neither package is installed');
    }
  }
}

/**
 * Dawn prints its Vulkan driver search to stderr (natively, out of reach of JS) when it finds no adapter, and
 * TF.js then logs a stack trace. Asking for an adapter in a child process first keeps that noise out of ours and
 * turns "no adapter" into one clear error.
 */
async function probeDawnAdapter(dawn: string): Promise<void> {
  const [{ createRequire }, { spawnSync }] = await Promise.all([nodeModule('node:module'), nodeModule('node:child_process')]);
  let path: string;
  try {
    path = createRequire(import.meta.url).resolve(dawn);
  } catch {
    throw new Error(`the '${dawn}' package is not installed`);
  }
  const probe = `require(${JSON.stringify(path)}).create([]).requestAdapter().then((a) => process.exit(a ? 0 : 3), () => process.exit(3))`;
  const result = spawnSync(process.execPath, ['-e', probe], { stdio: 'ignore', timeout: 60_000 });
  if (result.status === 3) {
    throw new Error('Dawn found no WebGPU adapter (no GPU driver, nor a software Vulkan driver such as SwiftShader: see VK_ICD_FILENAMES)');
  }
  if (result.status !== 0) throw new Error(`probing Dawn failed (${result.error?.message ?? `exit ${result.status ?? result.signal}`})`);
}


/** The backend to use when none is named: CODIFF_BACKEND, else wasm (Node) or webgpu when a browser has it. */
export function defaultBackend(): BackendName {
  const env = isNode ? process.env.CODIFF_BACKEND : undefined;
  if (env) {
    if (!(BACKENDS as readonly string[]).includes(env)) {
      throw new NnError(`CODIFF_BACKEND=${env} is not one of ${BACKENDS.join(', ')}`);
    }
    return env as BackendName;
  }
  const browserGpu = !isNode && !!(globalThis as { navigator?: { gpu?: unknown } }).navigator?.gpu;
  return browserGpu ? 'webgpu' : 'wasm';
}

export interface BackendOptions {
  /**
   * wasm in Node: worker threads for XNNPACK's kernels (default CODIFF_WASM_THREADS, else 1). Fixed when the wasm
   * backend first initialises. Browsers decide themselves (threads need a cross-origin-isolated page).
   */
  readonly threads?: number;
}

/** Threads the wasm backend was initialised with in this process (undefined: not yet). */
let wasmThreads: number | undefined;

/** The wasm backend's thread count in Node once `useBackend('wasm')` ran, else undefined. */
export const wasmThreadCount = (): number | undefined => wasmThreads;

function requestedThreads(options: BackendOptions): number {
  const env = isNode ? process.env.CODIFF_WASM_THREADS : undefined;
  const threads = options.threads ?? (env ? Number(env) : 1);
  if (!Number.isInteger(threads) || threads < 1 || threads > 8) {
    throw new NnError(`wasm threads must be an integer 1..8, got ${options.threads ?? `CODIFF_WASM_THREADS=${env}`}`);
  }
  return threads;
}

/**
 * Load and activate a TF.js backend (default: `defaultBackend()`). Throws an NnError naming what is missing
 * when the backend cannot be loaded or initialised.
 */
export async function useBackend(name: BackendName = defaultBackend(), options: BackendOptions = {}): Promise<BackendName> {
  if (!(BACKENDS as readonly string[]).includes(name)) throw new NnError(`unknown backend '${name}' (${BACKENDS.join(', ')})`);
  const threads = name === 'wasm' && isNode ? requestedThreads(options) : undefined;
  // Initialised without us (TF.js picks wasm by itself on first use): single-threaded, as TF.js does in Node.
  if (threads !== undefined && wasmThreads === undefined && tf.findBackend('wasm')) wasmThreads = 1;
  if (threads !== undefined && wasmThreads !== undefined && threads !== wasmThreads) {
    throw new NnError(`the wasm backend already runs with ${wasmThreads} thread(s); choose threads before its first use`);
  }
  if (tf.getBackend() === name) return name;
  try {
    if (!tf.engine().registryFactory[name]) await register(name);
    const activate = async () => {
      if (!(await tf.setBackend(name))) throw new Error('initialisation failed');
      await tf.ready();
    };
    if (threads !== undefined && threads > 1 && wasmThreads === undefined) await initWasmWithThreads(threads, activate);
    else await activate();
    // The cpu backend's one-time console banner in Node recommends tfjs-node; the error above already names it.
    if (name === 'cpu' && isNode) Object.assign(tf.backend(), { firstUse: false });
    if (name === 'wasm') guardWasmHeap(tf.backend() as unknown as WasmBackend);
    if (threads !== undefined) wasmThreads ??= threads;
  } catch (e) {
    throw new NnError(`backend '${name}' is unavailable: ${(e as Error).message}. It needs ${REQUIREMENTS[name]}.`);
  }
  return name;
}

type WasmAllocator = Record<'_malloc' | '_free', (n: number) => number>;

interface WasmBackend {
  wasm: WasmAllocator;
  dataIdMap: { delete(dataId: object): boolean };
  disposeData(dataId: object, force?: boolean): boolean;
}

const GiB = 2 ** 30;
/**
 * The tensors on the heap plus a kernel's inputs may not pass this: kernels allocate scratch of about their inputs'
 * size inside the module (Transpose before a reduction, for one), and the rest of the 4 GiB covers the allocator's
 * fragmentation.
 */
const WASM_HEAP_BUDGET = 3.5 * GiB;

/** Kernels whose output is their input's data under another shape: they allocate nothing. */
const SHARES_INPUT = new Set(['Reshape', 'Identity', 'ExpandDims', 'Squeeze']);

let wasmGuarded = false;

/**
 * In the threaded build an allocation that fails inside the wasm module does not fail: its allocator spins on its own
 * lock forever, so a training step too large for the heap hung instead of erring. Work that would take the heap near
 * its end is therefore refused before it enters the module (NnError OUT_OF_MEMORY, the module still healthy). Should a
 * trap or abort happen all the same, the module is treated as dead: every kernel and allocation throws that error
 * again at once, and disposal only forgets the tensor (a free could meet the lock the trap left taken).
 */
function guardWasmHeap(backend: WasmBackend): void {
  if (wasmGuarded) return;
  wasmGuarded = true;
  let trap: Error | undefined;
  // Bytes of the buffers TF.js allocated on the heap (tf.memory().numBytes counts a buffer once per view of it).
  const sizes = new Map<number, number>();
  let onHeap = 0;
  const refuseBeyondBudget = (what: string, bytes: number) => {
    if (onHeap + bytes <= WASM_HEAP_BUDGET) return;
    const gib = (n: number) => `${(n / GiB).toFixed(2)} GiB`;
    throw new NnError(`the wasm backend ran out of memory: ${what} needs ${gib(bytes)} beside ${gib(onHeap)} of tensors, and its heap holds 4 GiB`, 'OUT_OF_MEMORY');
  };
  const guard =
    <A extends unknown[], R>(f: (...args: A) => R, check: (...args: A) => void) =>
    (...args: A): R => {
      if (trap) throw trap;
      check(...args);
      try {
        return f(...args);
      } catch (e) {
        if (e instanceof WebAssembly.RuntimeError) trap = e;
        throw e;
      }
    };
  const inputBytes = (inputs: tf.NamedTensorInfoMap) =>
    Object.values(inputs).reduce((sum, t) => sum + (t ? tf.util.sizeFromShape(t.shape) * tf.util.bytesPerElement(t.dtype) : 0), 0);
  for (const kernel of tf.getKernelsForBackend('wasm')) {
    const check = SHARES_INPUT.has(kernel.kernelName) ? () => undefined : ({ inputs }: { inputs: tf.NamedTensorInfoMap }) => refuseBeyondBudget(`${kernel.kernelName}'s scratch`, inputBytes(inputs));
    tf.unregisterKernel(kernel.kernelName, 'wasm');
    tf.registerKernel({ ...kernel, kernelFunc: guard(kernel.kernelFunc, check) });
  }
  // Emscripten's first `_malloc`/`_free` replaces itself with the raw export: keep what it sets underneath ours.
  const interpose = (name: keyof WasmAllocator, wrap: (raw: (n: number) => number) => (n: number) => number) => {
    let raw = backend.wasm[name];
    const wrapped = wrap((n) => raw(n));
    Object.defineProperty(backend.wasm, name, { configurable: true, get: () => wrapped, set: (f: (n: number) => number) => (raw = f) });
  };
  interpose('_malloc', (malloc) =>
    guard(
      (bytes: number) => {
        const pointer = malloc(bytes);
        sizes.set(pointer >>> 0, bytes);
        onHeap += bytes;
        return pointer;
      },
      (bytes) => refuseBeyondBudget('a new tensor', bytes),
    ),
  );
  interpose('_free', (free) => (pointer) => {
    onHeap -= sizes.get(pointer >>> 0) ?? 0;
    sizes.delete(pointer >>> 0);
    return trap ? 0 : free(pointer);
  });
  const disposeData = backend.disposeData.bind(backend);
  backend.disposeData = (dataId, force) => (trap ? (backend.dataIdMap.delete(dataId), true) : disposeData(dataId, force));
}
