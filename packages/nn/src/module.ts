import * as tf from '@tensorflow/tfjs-core';
import { NnError } from './errors.js';
import { tfShape, tfToTorch, torchToTf, type ParamLayout } from './layout.js';
import type { HostTensor } from './safetensors.js';

/** A trainable tensor that knows its reference (PyTorch) shape and how TF.js lays it out. */
export class Parameter {
  readonly variable: tf.Variable;

  constructor(
    readonly torchShape: readonly number[],
    readonly layout: ParamLayout,
    initial: tf.Tensor,
    trainable = true,
  ) {
    this.variable = tf.variable(initial, trainable);
    initial.dispose();
  }

  get value(): tf.Variable {
    return this.variable;
  }

  /** Overwrite from a checkpoint tensor in torch layout. */
  assign(t: HostTensor): void {
    const shape = tfShape(this.layout, this.torchShape);
    tf.tidy(() => this.variable.assign(tf.tensor(torchToTf(this.layout, t), shape, 'float32')));
  }

  /** The value in torch layout, for saving. */
  toHost(): HostTensor {
    return { shape: this.torchShape, data: tfToTorch(this.layout, this.torchShape, this.variable.dataSync() as Float32Array) };
  }
}

export interface LoadReport {
  readonly loaded: string[];
  /** Model parameters the checkpoint did not provide. */
  readonly missing: string[];
  /** Checkpoint tensors the model has no parameter for. */
  readonly unexpected: string[];
  readonly shapeMismatches: { key: string; expected: readonly number[]; got: readonly number[] }[];
}

/**
 * Base of every model part, like torch.nn.Module: parameters and child modules are registered under names, and
 * their dotted paths are the reference checkpoint's keys, so loading a state dict is a 1:1 map.
 */
export abstract class Module {
  private readonly params = new Map<string, Parameter>();
  private readonly children = new Map<string, Module>();

  protected param(name: string, torchShape: readonly number[], layout: ParamLayout, init: Init = 'fanIn'): Parameter {
    const shape = tfShape(layout, torchShape);
    const p = new Parameter(torchShape, layout, initialValue(init, shape, torchShape));
    this.params.set(name, p);
    return p;
  }

  protected child<M extends Module>(name: string, module: M): M {
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

  /**
   * Copy a state dict (torch layout) into the parameters. With `strict` (default) any missing or unexpected
   * key or shape mismatch throws an NnError listing them; otherwise the report says what was skipped.
   */
  loadStateDict(dict: ReadonlyMap<string, HostTensor>, options: { strict?: boolean; prefix?: string } = {}): LoadReport {
    const strict = options.strict ?? true;
    const report = this.compareStateDict(dict, options.prefix ?? '');
    const problems = report.missing.length + report.unexpected.length + report.shapeMismatches.length;
    if (strict && problems > 0) throw new NnError(describeProblems(report));
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
  checkStateDict(dict: ReadonlyMap<string, { shape: readonly number[] }>): void {
    const report = this.compareStateDict(dict, '');
    if (report.missing.length + report.unexpected.length + report.shapeMismatches.length > 0) {
      throw new NnError(describeProblems(report));
    }
  }

  private compareStateDict(dict: ReadonlyMap<string, { shape: readonly number[] }>, prefix: string): LoadReport {
    const report: LoadReport = { loaded: [], missing: [], unexpected: [], shapeMismatches: [] };
    const own = new Map(this.namedParameters(prefix));
    for (const [key, p] of own) {
      const t = dict.get(key);
      if (!t) report.missing.push(key);
      else if (!sameShape(t.shape, p.torchShape)) report.shapeMismatches.push({ key, expected: p.torchShape, got: t.shape });
    }
    for (const key of dict.keys()) if (key.startsWith(prefix) && !own.has(key)) report.unexpected.push(key);
    return report;
  }

  /** All parameters in torch layout under their checkpoint keys. */
  stateDict(prefix = ''): Map<string, HostTensor> {
    return new Map([...this.namedParameters(prefix)].map(([k, p]) => [k, p.toHost()]));
  }

  dispose(): void {
    for (const p of this.parameters()) p.variable.dispose();
  }
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

function initialValue(init: Init, shape: number[], torchShape: readonly number[]): tf.Tensor {
  if (init === 'zeros') return tf.zeros(shape);
  if (init === 'ones') return tf.ones(shape);
  const fanIn = torchShape.length > 1 ? torchShape.slice(1).reduce((a, d) => a * d, 1) : torchShape[0];
  const bound = 1 / Math.sqrt(Math.max(1, fanIn));
  return tf.randomUniform(shape, -bound, bound);
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

function describeProblems(r: LoadReport): string {
  const list = (xs: string[]) => (xs.length > 8 ? `${xs.slice(0, 8).join(', ')} … (${xs.length} in all)` : xs.join(', '));
  const parts = [];
  if (r.missing.length) parts.push(`missing keys: ${list(r.missing)}`);
  if (r.unexpected.length) parts.push(`unexpected keys: ${list(r.unexpected)}`);
  if (r.shapeMismatches.length) {
    parts.push(`shape mismatches: ${list(r.shapeMismatches.map((m) => `${m.key} (model ${JSON.stringify(m.expected)}, checkpoint ${JSON.stringify(m.got)})`))}`);
  }
  return `state dict does not match the model: ${parts.join('; ')}`;
}
