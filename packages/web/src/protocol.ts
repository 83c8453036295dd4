// Messages between the page (main.ts) and the worker that holds the model (worker.ts). TF.js runs in the worker so
// the page stays responsive on wasm, whose kernels block the thread they run on.

export type BackendChoice = 'webgpu' | 'wasm';

/** Where the model's bytes came from: the site's own folder, the Cache Storage copy of it, or the user's folder. */
export type ModelSource = 'network' | 'cache' | 'folder';

export type ToWorker =
  | { type: 'init'; backend: BackendChoice | undefined; modelUrl: string }
  | { type: 'load-folder'; files: { path: string; file: File }[] }
  /** `postFilter`: run the model folder's luma post-filter (offered where 'ready' said `postFilter`). */
  | { type: 'restore'; id: number; name: string; bytes: ArrayBuffer; postFilter: boolean }
  /** The finished restore `id` again, with the post-filter on or off: the model does not run again. */
  | { type: 'post-filter'; id: number; on: boolean }
  | { type: 'cancel'; id: number }
  | { type: 'degrade'; id: number; bytes: ArrayBuffer; quality: number };

/** Interleaved RGBA, ready for a canvas. */
export interface Rgba {
  readonly width: number;
  readonly height: number;
  readonly data: ArrayBuffer;
}

export type FromWorker =
  | { type: 'loading'; what: string; done: number; total: number }
  /** `postFilter`: the model has a luma post-filter that its restore can run (codiff-lite's). */
  | { type: 'ready'; backend: BackendChoice; threads?: number; model: string; source: ModelSource; bytes: number; tensors: number; postFilter: boolean }
  | { type: 'info'; id: number; width: number; height: number; grey: boolean; tableQuality?: { quality: number; exact: boolean }; caveQuality?: number; before?: Rgba }
  | { type: 'progress'; id: number; stage: string; done: number; total: number }
  /** `step`: what took `seconds`, the whole restore or only switching the post-filter. */
  | { type: 'restored'; id: number; step: 'restore' | 'post-filter'; png: ArrayBuffer; after: Rgba; seconds: number; tensors: number }
  | { type: 'cancelled'; id: number; tensors: number }
  | { type: 'degraded'; id: number; jpeg: ArrayBuffer; width: number; height: number }
  | { type: 'error'; id?: number; message: string; tensors: number };
