import * as tf from '@tensorflow/tfjs-core';
import { Conv2d, Linear, Module, NnError, type HostTensor, type LayerBranch } from '@codiff/nn';

export interface LoraConfig {
  /** Rank of the update. */
  r: number;
  /** Scaling numerator: the update is (alpha / r)·B·A. */
  alpha: number;
  /**
   * Module names to adapt, matched like peft: a Linear or Conv2d whose path equals a name or ends with
   * '.' + name (so 'conv' hits `…downsamplers.0.conv` but not `conv_in`).
   */
  targetModules: readonly string[];
}

type Adaptable = Linear | Conv2d;

/** Named children (one per adapter), like torch.nn.ModuleDict. */
class AdapterDict<M extends Module> extends Module {
  readonly byName = new Map<string, M>();
  add(name: string, module: M): M {
    this.byName.set(name, this.child(name, module));
    return module;
  }
}

/**
 * The LoRA update on one layer, for any number of named adapters: ΔW·x = (alpha/r)·B(A(x)). For a Conv2d, A is
 * a conv with the base kernel, stride and padding and B a 1×1 conv; for a Linear both are Linear without bias.
 */
export class LoraLayer extends Module implements LayerBranch {
  readonly loraA = this.child('lora_A', new AdapterDict<Adaptable>());
  readonly loraB = this.child('lora_B', new AdapterDict<Adaptable>());
  readonly scaling = new Map<string, number>();
  readonly active = new Set<string>();
  readonly merged = new Set<string>();

  constructor(readonly base: Adaptable) {
    super();
  }

  addAdapter(name: string, r: number, alpha: number): void {
    const base = this.base;
    if (base instanceof Linear) {
      this.loraA.add(name, new Linear(base.inFeatures, r, { bias: false }));
      this.loraB.add(name, zeroed(new Linear(r, base.outFeatures, { bias: false })));
    } else {
      const { stride, padding } = base.options;
      this.loraA.add(name, new Conv2d(base.inChannels, r, base.kernel, { stride, padding, bias: false }));
      this.loraB.add(name, zeroed(new Conv2d(r, base.outChannels, 1, { bias: false })));
    }
    this.scaling.set(name, alpha / r);
    this.active.add(name);
  }

  apply(x: tf.Tensor): tf.Tensor | null {
    let contributing = false;
    for (const name of this.active) contributing ||= !this.merged.has(name);
    if (!contributing) return null;
    return tf.tidy(() => {
      let sum: tf.Tensor | undefined;
      for (const name of this.active) {
        if (this.merged.has(name)) continue;
        const a = this.loraA.byName.get(name)!;
        const b = this.loraB.byName.get(name)!;
        const y = tf.mul(forward(b, forward(a, x)), this.scaling.get(name)!);
        sum = sum ? tf.add(sum, y) : y;
      }
      return sum!;
    });
  }

  /** ΔW in the base layer's TF.js layout: scaling·(B·A). */
  delta(name: string): tf.Tensor {
    return tf.tidy(() => {
      const a = this.loraA.byName.get(name)!.weight.value;
      const b = this.loraB.byName.get(name)!.weight.value;
      const r = a.shape[a.rank - 1];
      // Linear: A [in, r] · B [r, out]. Conv: A [kh, kw, in, r] · B [1, 1, r, out] over r.
      const prod = tf.matMul(tf.reshape(a, [-1, r]), tf.reshape(b, [r, -1]));
      return tf.mul(tf.reshape(prod, this.base.weight.value.shape), this.scaling.get(name)!);
    });
  }

  async merge(name: string): Promise<void> {
    if (this.merged.has(name)) return;
    await this.updateBase((w, d) => tf.add(w, d), name);
    this.merged.add(name);
  }

  async unmerge(name: string): Promise<void> {
    if (!this.merged.has(name)) return;
    await this.updateBase((w, d) => tf.sub(w, d), name);
    this.merged.delete(name);
  }

  private async updateBase(op: (w: tf.Tensor, d: tf.Tensor) => tf.Tensor, name: string): Promise<void> {
    const updated = tf.tidy(() => op(this.base.weight.value, this.delta(name)));
    await this.base.weight.assignValue(updated);
    updated.dispose();
  }
}

/** B starts at zero (as in peft), so a new adapter changes nothing until trained. */
function zeroed<M extends Adaptable>(m: M): M {
  tf.tidy(() => m.weight.variable.assign(tf.zerosLike(m.weight.variable)));
  return m;
}

function forward(layer: Adaptable, x: tf.Tensor): tf.Tensor {
  return layer instanceof Linear ? layer.forward(x) : layer.forward(x as tf.Tensor4D);
}

/** Whether a peft in-memory key (`<module>.lora_A.<adapter>.weight`) belongs to adapter `name`. */
const isAdapterKey = (key: string, name: string) => key.includes(`.lora_A.${name}.`) || key.includes(`.lora_B.${name}.`);

/** peft's target matching: the full path, or its last dotted components. */
export function matchesTarget(path: string, targets: readonly string[]): boolean {
  return targets.some((t) => path === t || path.endsWith(`.${t}`));
}

/**
 * LoRA on a model: adapters attach to the matching Linear/Conv2d layers as additive branches. Its own parameter
 * paths are peft's in-memory keys (`<module>.lora_A.<adapter>.weight`); the base model's keys are unchanged.
 */
export class LoraModel extends Module {
  readonly layers = new Map<string, LoraLayer>();
  readonly configs = new Map<string, LoraConfig>();

  constructor(readonly base: Module) {
    super();
  }

  /** Add an adapter to every layer matching `config.targetModules`; returns the adapted module paths. */
  addAdapter(name: string, config: LoraConfig): string[] {
    const paths = [...this.adaptableLayers()].filter(([path]) => matchesTarget(path, config.targetModules)).map(([p]) => p);
    if (paths.length === 0) throw new NnError(`LoRA targets ${config.targetModules.join(', ')} match no Linear or Conv2d module`);
    this.attach(name, config, paths);
    return paths;
  }

  /** Add an adapter to exactly these module paths (e.g. the modules a LoRA file has tensors for). */
  attach(name: string, config: LoraConfig, paths: readonly string[]): void {
    if (this.configs.has(name)) throw new NnError(`LoRA adapter '${name}' already exists`);
    if (!Number.isInteger(config.r) || config.r < 1) throw new NnError(`LoRA rank must be a positive integer, got ${config.r}`);
    const layers = new Map(this.adaptableLayers());
    for (const path of paths) {
      const m = layers.get(path);
      if (!m) throw new NnError(`LoRA module '${path}' is not a Linear or Conv2d of this model`);
      let layer = this.layers.get(path);
      if (!layer) {
        layer = this.child(path, new LoraLayer(m));
        this.layers.set(path, layer);
        m.branches.add(layer);
      }
      layer.addAdapter(name, config.r, config.alpha);
    }
    this.configs.set(name, config);
  }

  /** The base model's Linear and Conv2d layers by path: what LoRA can adapt. */
  *adaptableLayers(): Generator<[string, Adaptable]> {
    for (const [path, m] of this.base.namedModules()) if (m instanceof Linear || m instanceof Conv2d) yield [path, m];
  }

  /** Which adapters contribute to the forward pass (default: all added). */
  setActive(names: readonly string[]): void {
    for (const n of names) if (!this.configs.has(n)) throw new NnError(`no LoRA adapter '${n}'`);
    for (const layer of this.layers.values()) {
      layer.active.clear();
      for (const n of names) if (layer.loraA.byName.has(n)) layer.active.add(n);
    }
  }

  /** Fold adapters into the base weights (W' = W + scaling·B·A); their branches then stop contributing. */
  async merge(names: readonly string[] = [...this.configs.keys()]): Promise<void> {
    for (const layer of this.layers.values()) for (const n of names) if (layer.loraA.byName.has(n)) await layer.merge(n);
  }

  async unmerge(names: readonly string[] = [...this.configs.keys()]): Promise<void> {
    for (const layer of this.layers.values()) for (const n of names) if (layer.loraA.byName.has(n)) await layer.unmerge(n);
  }

  /** Trainable LoRA parameters of one adapter, by peft in-memory key. */
  adapterParameters(name: string) {
    return [...this.namedParameters()].filter(([k]) => isAdapterKey(k, name));
  }

  /** Copy A/B tensors (peft in-memory keys, adapter `name`) into an existing adapter. Missing tensors throw. */
  loadAdapterWeights(name: string, tensors: ReadonlyMap<string, HostTensor>): void {
    this.loadStateDict(
      new Map([...tensors].filter(([k]) => isAdapterKey(k, name))),
      { strict: false },
    );
    const own = this.adapterParameters(name).map(([k]) => k);
    const missing = own.filter((k) => !tensors.has(k));
    if (missing.length) throw new NnError(`LoRA adapter '${name}' is missing ${missing.length} tensors, e.g. ${missing[0]}`);
  }

  /** Detach every adapter from the base model and free its tensors (merged weights stay merged). */
  override dispose(): void {
    for (const layer of this.layers.values()) layer.base.branches.delete(layer);
    super.dispose();
  }
}
