// Multi-threaded TF.js wasm in Node. TF.js ships a pthreads build (XNNPACK on a thread pool) but never uses it in
// Node (tfjs issue 3830) because Emscripten's loader cannot start workers there as TF.js wires it: the worker
// script and the main script are handed over as Blobs / blob: URLs, which Node's worker_threads cannot load. While
// the backend initialises we therefore:
//  - write the worker script to a temporary file and return its path instead of a blob: URL;
//  - write the main script (the module factory) to a file the workers import, with the module-level names the
//    bundled factory refers to (require$$N, commonjsGlobal) defined in front of it;
//  - report the logical core count TF.js's C++ expects: it halves os.cpus() to skip SMT siblings and caps the
//    pool at that, so 2 threads on a 2-core machine would otherwise be refused.
// Everything patched is restored when initialisation ends.
import * as tf from '@tensorflow/tfjs-core';
import { NnError } from './errors.js';
import { nodeModule } from './node-import.js';


/** `var require$$N = require('m');` lines of the CJS backend bundle: the names its Emscripten factory uses. */
function bundlerPrelude(bundleSource: string): string {
  const names = [...bundleSource.matchAll(/^var (require\$\$\d+) = require\('([^']+)'\);$/gm)].map(
    ([, name, module]) => `var ${name} = require(${JSON.stringify(module)});`,
  );
  return `${names.join('\n')}\nvar commonjsGlobal = global, _scriptDir = undefined;\n`;
}

/**
 * Initialise TF.js's wasm backend with `threads` worker threads (Node only). Must run before the wasm backend is
 * first initialised; `init` performs that initialisation (e.g. tf.setBackend('wasm')).
 */
export async function initWasmWithThreads(threads: number, init: () => Promise<void>): Promise<void> {
  const [{ createRequire }, wasm] = await Promise.all([nodeModule('node:module'), import('@tensorflow/tfjs-backend-wasm')]);
  const require = createRequire(import.meta.url);
  // The CommonJS module objects: `os` must be the (mutable) one the TF.js bundle holds.
  const fs = require('node:fs');
  const os = require('node:os');
  const path = require('node:path');
  let bundle: string;
  try {
    bundle = fs.readFileSync(require.resolve('@tensorflow/tfjs-backend-wasm'), 'utf8');
  } catch (e) {
    throw new NnError(`cannot read the TF.js wasm backend to start threads: ${(e as Error).message}`);
  }
  const dir: string = fs.mkdtempSync(path.join(os.tmpdir(), 'codiff-wasm-threads-'));
  process.once('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  const mainScript = path.join(dir, 'main.cjs');
  const workerScript = path.join(dir, 'worker.cjs');

  // Emscripten asks for the worker script once per pool worker, and each worker reads it on its own thread while
  // the next is created: rewriting the file in place let a slow worker read it truncated, fail to load, and leave
  // initialisation waiting on nothing (Node then exits with code 13). Each file is written once, by rename.
  const written = new Set<string>();
  const writeOnce = (file: string, text: string) => {
    if (written.has(file)) return;
    fs.writeFileSync(`${file}.part`, text);
    fs.renameSync(`${file}.part`, file);
    written.add(file);
  };
  const NativeBlob = globalThis.Blob;
  const nativeCreateObjectURL = URL.createObjectURL;
  const nativeCpus = os.cpus;
  const texts = new WeakMap<Blob, string>();
  globalThis.Blob = class extends NativeBlob {
    constructor(parts?: BlobPart[], options?: BlobPropertyBag) {
      super(parts, options);
      if (!parts?.every((p) => typeof p === 'string')) return;
      const text = parts.join('');
      texts.set(this, text);
      if (text.startsWith('var WasmBackendModuleThreadedSimd')) writeOnce(mainScript, bundlerPrelude(bundle) + text);
    }
  };
  URL.createObjectURL = (blob: Blob) => {
    const text = texts.get(blob);
    if (text === undefined || !text.includes('WasmBackendModuleThreadedSimd(Module)')) return nativeCreateObjectURL(blob);
    // The worker imports the main script through a blob: URL it makes itself; point it at the file instead.
    const redirect = `\nconst importScriptsOf = global.importScripts;\nglobal.importScripts = (f) => importScriptsOf(String(f).startsWith('blob:') ? ${JSON.stringify(mainScript)} : f);\n`;
    writeOnce(workerScript, text + redirect);
    return workerScript;
  };
  const cores = nativeCpus();
  os.cpus = () => Array.from({ length: Math.max(cores.length, 2 * threads) }, (_, i) => cores[i % cores.length]);
  try {
    tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', true);
    wasm.setThreadsCount(threads);
    await init();
  } finally {
    globalThis.Blob = NativeBlob;
    URL.createObjectURL = nativeCreateObjectURL;
    os.cpus = nativeCpus;
  }
  const got = wasm.getThreadsCount();
  if (got !== threads) throw new NnError(`the wasm backend started ${got} threads instead of ${threads}`);
  // Idle pool workers must not keep the process alive (the caller blocks on them while kernels run).
  const pthreads = (tf.backend() as unknown as { wasm?: { PThread?: Record<'unusedWorkers' | 'runningWorkers', { unref(): void }[]> } }).wasm?.PThread;
  for (const worker of [...(pthreads?.unusedWorkers ?? []), ...(pthreads?.runningWorkers ?? [])]) worker.unref();
}
