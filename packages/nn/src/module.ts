import * as tf from '@tensorflow/tfjs-core';
import { isFloatDtype } from './dtype.js';
import { NnError } from './errors.js';
import { tfShape, tfToTorch, torchToTf, type ParamLayout } from './layout.js';
import type { HostTensor } from './safetensors.js';

/**
 * Where parameters live. `device`: a tf.Variable in the backend's memory. `host`: a Float32Array in JS memory,
 * uploaded as a temporary tensor each time a layer runs, for models larger than the backend holds (SD 2.1's
 * UNet is 3.5 GB in float32; wasm32 addresses 4 GiB). Host parameters are frozen: gradients flow through them
 * to inputs and to device parameters (e.g. LoRA), but they are not trained.
 */
export type Placement = 'device' | 'host';

let constructionPlacement: Placement = 'device';

/** Build modules whose parameters start in `placement` (host avoids ever holding them on the device). */
export function withParameterPlacement<T>(placement: Placement, build: () => T): T {
  const previous = constructionPlacement;
  constructionPlacement = placement;
  try {
    return build();
  } finally {
    constructionPlacement = previous;
  }
}

function variableFrom(data: Float32Array, shape: number[]): tf.Variable {
  const t = tf.tensor(data, shape);
  const v = tf.variable(t);
  t.dispose(); // the variable keeps its own reference to the data
  return v;
}

/** A tensor that knows its reference (PyTorch) shape and how TF.js lays it out. */
export class Parameter {
  private device: tf.Variable | undefined;
  private host: Float32Array | undefined;
  readonly shape: number[];

  constructor(
    readonly torchShape: readonly number[],
    readonly layout: ParamLayout,
    initial: tf.Tensor | Float32Array,
    placement: Placement = 'device',
    /** False for buffers (e.g. BatchNorm running statistics): saved and loaded by key, never given to an optimiser. */
    readonly trainable = true,
  ) {
    this.shape = tfShape(layout, torchShape);
    const onDevice = placement === 'device';
    if (initial instanceof Float32Array) {
      if (onDevice) this.device = variableFrom(initial, this.shape);
      else this.host = initial;
    } else {
      if (onDevice) this.device = tf.variable(initial);
      else this.host = initial.dataSync() as Float32Array;
      initial.dispose();
    }
  }

  get size(): number {
    return this.shape.reduce((a, d) => a * d, 1);
  }

  get placement(): Placement {
    return this.host ? 'host' : 'device';
  }

  /** The trainable variable (device placement only). */
  get variable(): tf.Variable {
    if (!this.device) throw new NnError('this parameter is held on the host; move it to the device to train it');
    return this.device;
  }

  /**
   * The value as a tensor (TF.js layout). For host parameters this uploads a temporary tensor: call it inside
   * tf.tidy, which frees it.
   */
  get value(): tf.Tensor {
    return this.device ?? tf.tensor(this.host!, this.shape);
  }

  /** Overwrite from a checkpoint tensor in torch layout. */
  assign(t: HostTensor): void {
    const data = torchToTf(this.layout, t);
    if (this.host) this.host = data;
    else tf.tidy(() => this.device!.assign(tf.tensor(data, this.shape, 'float32')));
  }

  /**
   * Overwrite from a tensor in TF.js layout (which the caller keeps owning). Async because host parameters read
   * the tensor back, and some backends (WebGPU in Node) only read asynchronously.
   */
  async assignValue(t: tf.Tensor): Promise<void> {
    if (this.host) this.host = (await t.data()).slice() as Float32Array;
    else this.device!.assign(t);
  }

  /** The value in torch layout, for saving. */
  async toHost(): Promise<HostTensor> {
    const data = this.host ?? ((await this.device!.data()) as Float32Array);
    return { shape: this.torchShape, data: tfToTorch(this.layout, this.torchShape, data) };
  }

  async moveTo(placement: Placement): Promise<void> {
    if (placement === this.placement) return;
    if (placement === 'host') {
      this.host = (await this.device!.data()).slice() as Float32Array;
      this.device!.dispose();
      this.device = undefined;
    } else {
      this.device = variableFrom(this.host!, this.shape);
      this.host = undefined;
    }
  }

  dispose(): void {
    this.device?.dispose();
    this.device = undefined;
    this.host = undefined;
  }
}

export interface LoadReport {
  readonly loaded: string[];
  /** Model parameters the checkpoint did not provide. */
  readonly missing: string[];
  /** Checkpoint tensors the model has no parameter for. */
  readonly unexpected: string[];
  readonly shapeMismatches: { key: string; expected: readonly number[]; got: readonly number[] }[];
  /** Trainable parameters stored as integers or booleans (a checkpoint of something else). */
  readonly dtypeMismatches: { key: string; got: string }[];
}

/**
 * Base of every model part, like torch.nn.Module: parameters and child modules are registered under names, and
 * their dotted paths are the reference checkpoint's keys, so loading a state dict is a 1:1 map.
 */
export abstract class Module {
  private readonly params = new Map<string, Parameter>();
  private readonly children = new Map<string, Module>();
  private trainingMode = false;

  protected param(name: string, torchShape: readonly number[], layout: ParamLayout, init: Init = 'fanIn'): Parameter {
    const shape = tfShape(layout, torchShape);
    const p = new Parameter(torchShape, layout, initialValue(init, shape, torchShape), constructionPlacement);
    this.params.set(name, p);
    return p;
  }

  /** Register a parameter created elsewhere under `name` (see ParameterGroup). */
  protected adopt(name: string, p: Parameter): void {
    if (this.params.has(name)) throw new NnError(`parameter '${name}' is registered twice`);
    this.params.set(name, p);
  }

  /** A state-dict entry that is not trained (torch's register_buffer), kept on the device. */
  protected buffer(name: string, torchShape: readonly number[], init: Init): Parameter {
    const p = new Parameter(torchShape, 'same', initialValue(init, [...torchShape], torchShape), 'device', false);
    this.params.set(name, p);
    return p;
  }

  /** Train mode (torch's `train()`): layers such as BatchNorm use batch statistics and update their buffers. */
  get training(): boolean {
    return this.trainingMode;
  }

  /** Set train (true) or eval (false) mode on this module and every descendant; returns this. */
  train(mode = true): this {
    this.trainingMode = mode;
    for (const m of this.children.values()) m.train(mode);
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  protected child<M extends Module>(name: string, module: M): M {
    module.train(this.trainingMode);
    this.children.set(name, module);
    return module;
  }

  *namedParameters(prefix = ''): Generator<[string, Parameter]> {
    for (const [name, p] of this.params) yield [prefix + name, p];
    for (const [name, m] of this.children) yield* m.namedParameters(`${prefix}${name}.`);
  }

  *namedModules(prefix = ''): Generator<[string, Module]> {
    for (const [name, m] of this.children) {
      yield [prefix + name, m];
      yield* m.namedModules(`${prefix}${name}.`);
    }
  }

  parameters(): Parameter[] {
    return [...this.namedParameters()].map(([, p]) => p);
  }

  /** The entries an optimiser updates: every parameter except buffers, under their checkpoint keys. */
  *namedTrainableParameters(prefix = ''): Generator<[string, Parameter]> {
    for (const entry of this.namedParameters(prefix)) if (entry[1].trainable) yield entry;
  }

  /**
   * Copy a state dict (torch layout) into the parameters. With `strict` (default) any missing or unexpected
   * key or shape mismatch throws an NnError listing them; otherwise the report says what was skipped.
   */
  loadStateDict(dict: ReadonlyMap<string, HostTensor>, options: { strict?: boolean; prefix?: string } = {}): LoadReport {
    const strict = options.strict ?? true;
    const report = this.compareStateDict(dict, options.prefix ?? '');
    if (strict && hasProblems(report)) throw new NnError(describeProblems(report));
    for (const [key, p] of this.namedParameters(options.prefix ?? '')) {
      const t = dict.get(key);
      if (t && sameShape(t.shape, p.torchShape)) {
        p.assign(t);
        report.loaded.push(key);
      }
    }
    return report;
  }

  /** Throw an NnError naming every missing, unexpected or mis-shaped key of `dict` (shapes only are read). */
  checkStateDict(dict: ReadonlyMap<string, { shape: readonly number[]; storedAs?: string }>): void {
    const report = this.compareStateDict(dict, '');
    if (hasProblems(report)) throw new NnError(describeProblems(report));
  }

  private compareStateDict(dict: ReadonlyMap<string, { shape: readonly number[]; storedAs?: string }>, prefix: string): LoadReport {
    const report: LoadReport = { loaded: [], missing: [], unexpected: [], shapeMismatches: [], dtypeMismatches: [] };
    const own = new Map(this.namedParameters(prefix));
    for (const [key, p] of own) {
      const t = dict.get(key);
      if (!t) report.missing.push(key);
      else if (!sameShape(t.shape, p.torchShape)) report.shapeMismatches.push({ key, expected: p.torchShape, got: t.shape });
      else if (p.trainable && t.storedAs && !isFloatDtype(t.storedAs)) report.dtypeMismatches.push({ key, got: t.storedAs });
    }
    for (const key of dict.keys()) if (key.startsWith(prefix) && !own.has(key)) report.unexpected.push(key);
    return report;
  }

  /** All parameters in torch layout under their checkpoint keys. */
  async stateDict(prefix = ''): Promise<Map<string, HostTensor>> {
    const out = new Map<string, HostTensor>();
    for (const [k, p] of this.namedParameters(prefix)) out.set(k, await p.toHost());
    return out;
  }

  /** Move every parameter to the device (trainable variables) or to host memory (see Placement). */
  async moveTo(placement: Placement): Promise<void> {
    for (const p of this.parameters()) await p.moveTo(placement);
  }

  dispose(): void {
    for (const p of this.parameters()) p.dispose();
  }
}

/**
 * Parameters owned by other modules, under names of one's choosing: the part of a larger model that is trained
 * and checkpointed (e.g. LoRA tensors, one fully trained layer and a projection). Disposing the group leaves the
 * parameters to their owners.
 */
export class ParameterGroup extends Module {
  constructor(entries: Iterable<readonly [string, Parameter]>) {
    super();
    for (const [name, p] of entries) this.adopt(name, p);
  }

  override dispose(): void {}
}

/** Children registered by index ('0', '1', …), like torch.nn.ModuleList. */
export class ModuleList<M extends Module> extends Module {
  readonly items: M[];
  constructor(items: M[]) {
    super();
    this.items = items.map((m, i) => this.child(String(i), m));
  }
}

/** Initial values: 'fanIn' ~ U(±1/√fan_in) as torch's default layer init, 'zeros', 'ones'. */
export type Init = 'fanIn' | 'zeros' | 'ones';

/** Initial values, made on the host so that host-placed parameters never touch the device. */
function initialValue(init: Init, shape: number[], torchShape: readonly number[]): Float32Array {
  const out = new Float32Array(shape.reduce((a, d) => a * d, 1));
  if (init === 'zeros') return out;
  if (init === 'ones') return out.fill(1);
  const fanIn = torchShape.length > 1 ? torchShape.slice(1).reduce((a, d) => a * d, 1) : torchShape[0];
  const bound = 1 / Math.sqrt(Math.max(1, fanIn));
  for (let i = 0; i < out.length; i++) out[i] = (Math.random() * 2 - 1) * bound;
  return out;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

const hasProblems = (r: LoadReport) => r.missing.length + r.unexpected.length + r.shapeMismatches.length + r.dtypeMismatches.length > 0;

function describeProblems(r: LoadReport): string {
  const list = (xs: string[]) => (xs.length > 8 ? `${xs.slice(0, 8).join(', ')} … (${xs.length} in all)` : xs.join(', '));
  const parts = [];
  if (r.missing.length) parts.push(`missing keys: ${list(r.missing)}`);
  if (r.unexpected.length) parts.push(`unexpected keys: ${list(r.unexpected)}`);
  if (r.shapeMismatches.length) {
    parts.push(`shape mismatches: ${list(r.shapeMismatches.map((m) => `${m.key} (model ${JSON.stringify(m.expected)}, checkpoint ${JSON.stringify(m.got)})`))}`);
  }
  if (r.dtypeMismatches.length) parts.push(`not floating point: ${list(r.dtypeMismatches.map((m) => `${m.key} (${m.got})`))}`);
  return `state dict does not match the model: ${parts.join('; ')}`;
}
