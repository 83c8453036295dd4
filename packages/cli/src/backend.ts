import { availableParallelism } from 'node:os';
import type { BackendName } from '@codiff/nn';

/** What the wasm backend throws when its heap is exhausted. */
const WASM_ABORT = /^Aborted\(|memory access out of bounds/;

/** The wasm heap was full: the module aborted or trapped, or @codiff/nn refused the work before it started. */
export function isWasmOutOfMemory(e: unknown): boolean {
  if (!(e instanceof Error)) return false;
  return WASM_ABORT.test(e.message) || (e.name === 'NnError' && (e as { code?: string }).code === 'OUT_OF_MEMORY');
}

/**
 * Start the TF.js backend a command runs on (default wasm). wasm gets one thread per core (at most 8) unless
 * `--threads` or CODIFF_WASM_THREADS says otherwise, or it already runs in this process (its thread count is fixed
 * at start-up). The 2-thread mode computes what 1 thread computes (@codiff/nn tests it).
 */
export async function startBackend(backend?: string, threads?: number): Promise<{ backend: BackendName; threads?: number }> {
  const [nn, tf] = await Promise.all([import('@codiff/nn'), import('@tensorflow/tfjs-core')]);
  const name = (backend ?? nn.defaultBackend()) as BackendName;
  // Already running (started by us, or by TF.js on first use): its thread count stands.
  const running = nn.wasmThreadCount() !== undefined || 'wasm' in tf.engine().registry;
  const wanted = threads ?? (running || process.env.CODIFF_WASM_THREADS ? undefined : Math.min(8, availableParallelism()));
  await nn.useBackend(name, name === 'wasm' && wanted !== undefined ? { threads: wanted } : {});
  return { backend: name, threads: name === 'wasm' ? nn.wasmThreadCount() : undefined };
}
