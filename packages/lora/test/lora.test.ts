import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import { bytesSource, Conv2d, Linear, Module, nhwcToNchw, SafetensorsFile, useBackend, type HostTensor } from '@codiff/nn';
import { UNet2DConditionModel, unetConfigFromDiffusers } from '@codiff/sd-unet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadLoraAdapter, LoraModel, parseAdapterConfig, savePeftAdapter } from '../src/index.js';
import { backendsUnderTest, tensorAt, expectClose, golden, goldenJson, nhwcTensor, readAll } from '../../../test-support/tfjs.js';

const get = tensorAt;

class Host extends Module {
  constructor(readonly layer: Linear | Conv2d) {
    super();
    this.child('layer', layer);
  }
}

const TINY = {
  linear: { r: 4, alpha: 8, make: () => new Linear(8, 6) },
  conv3x3: { r: 2, alpha: 3, make: () => new Conv2d(4, 5, 3, { padding: 1 }) },
  conv3x3s2: { r: 3, alpha: 6, make: () => new Conv2d(4, 6, 3, { stride: 2, padding: 1 }) },
  conv1x1: { r: 2, alpha: 2, make: () => new Conv2d(6, 3, 1) },
} as const;

let tiny: Map<string, HostTensor>;
let unetWeights: Map<string, HostTensor>;
let adapter: Map<string, HostTensor>;
let cases: Map<string, HostTensor>;

beforeAll(async () => {
  tiny = await readAll('lora', 'tiny.safetensors');
  unetWeights = await readAll('unet-tiny', 'weights.safetensors');
  adapter = await readAll('lora', 'unet-lora', 'adapter_model.safetensors');
  cases = await readAll('lora', 'unet-lora', 'cases.safetensors');
});

const BACKENDS = await backendsUnderTest();

for (const backend of BACKENDS) {
  describe(`LoRA on ${backend}`, () => {
    beforeAll(async () => {
      await useBackend(backend);
    });

    it.each(Object.keys(TINY) as (keyof typeof TINY)[])('%s: unmerged, merged, unmerged again (peft tiny case)', async (name) => {
      const spec = TINY[name];
      const host = new Host(spec.make());
      host.loadStateDict(new Map([['layer.weight', get(tiny, `${name}.base_layer.weight`)], ['layer.bias', get(tiny, `${name}.base_layer.bias`)]]));
      const lora = new LoraModel(host);
      lora.attach('default', { r: spec.r, alpha: spec.alpha, targetModules: ['layer'] }, ['layer']);
      lora.loadAdapterWeights(
        'default',
        new Map([['layer.lora_A.default.weight', get(tiny, `${name}.lora_A.weight`)], ['layer.lora_B.default.weight', get(tiny, `${name}.lora_B.weight`)]]),
      );
      const xh = get(tiny, `${name}.x`);
      const x = xh.shape.length === 4 ? nhwcTensor(xh) : tf.tensor(xh.data, [...xh.shape]);
      const run = () => (host.layer instanceof Linear ? host.layer.forward(x) : host.layer.forward(x as tf.Tensor4D));
      let y = run();
      await expectClose(y, get(tiny, `${name}.y_lora`), `${name} unmerged`);
      y.dispose();
      await lora.merge();
      y = run();
      await expectClose(y, get(tiny, `${name}.y_merged`), `${name} merged`);
      y.dispose();
      const merged = (await host.stateDict()).get('layer.weight')!;
      await expectClose(tf.tensor(merged.data), get(tiny, `${name}.merged.weight`), `${name} merged weight`);
      await lora.unmerge();
      y = run();
      await expectClose(y, get(tiny, `${name}.y_lora`), `${name} unmerged again`);
      y.dispose();
      lora.setActive([]);
      y = run();
      await expectClose(y, get(tiny, `${name}.y_base`), `${name} no adapter`);
      y.dispose();
      x.dispose();
      lora.dispose();
      host.dispose();
    });

    it('several adapters active at once add up', async () => {
      const linear = new Linear(8, 6);
      const host = new Host(linear);
      host.loadStateDict(new Map([['layer.weight', get(tiny, 'linear.base_layer.weight')], ['layer.bias', get(tiny, 'linear.base_layer.bias')]]));
      const lora = new LoraModel(host);
      for (const n of ['a', 'b']) {
        lora.addAdapter(n, { r: 4, alpha: 8, targetModules: ['layer'] });
        lora.loadAdapterWeights(n, new Map([[`layer.lora_A.${n}.weight`, get(tiny, 'linear.lora_A.weight')], [`layer.lora_B.${n}.weight`, get(tiny, 'linear.lora_B.weight')]]));
      }
      const x = tf.tensor(get(tiny, 'linear.x').data, [2, 3, 8]);
      const y = linear.forward(x);
      const base = get(tiny, 'linear.y_base').data;
      const one = get(tiny, 'linear.y_lora').data;
      const expected = base.map((b, i) => b + 2 * (one[i] - b));
      await expectClose(y, { shape: [2, 3, 6], data: expected }, 'two adapters');
      lora.setActive(['b']);
      const yb = linear.forward(x);
      await expectClose(yb, get(tiny, 'linear.y_lora'), 'one of two adapters');
      tf.dispose([x, y, yb]);
      lora.dispose();
      host.dispose();
    });

    describe('on unet-tiny with the peft adapter (13 target names, 256 modules)', () => {
      let unet: UNet2DConditionModel;
      let lora: LoraModel;
      let sample: tf.Tensor4D;
      let ehs: tf.Tensor3D;
      const ts = [999, 250];
      beforeAll(() => {
        unet = new UNet2DConditionModel(unetConfigFromDiffusers(goldenJson('unet-tiny', 'config.json')));
        unet.loadStateDict(unetWeights);
        sample = nhwcTensor(get(cases, 'caseA.sample'));
        const e = get(cases, 'caseA.encoder_hidden_states');
        ehs = tf.tensor3d(e.data, e.shape as [number, number, number]);
      });
      afterAll(() => {
        tf.dispose([sample, ehs]);
        unet.dispose();
      });

      // Four UNet passes; on WebGPU over SwiftShader the first compiles every shader (over 2 minutes on a slow VM).
      it('peft files: target matching, unmerged, merged, unmerged, deactivated', async () => {
        lora = new LoraModel(unet);
        const config = parseAdapterConfig(readFileSync(golden('lora', 'unet-lora', 'adapter_config.json'), 'utf8'));
        expect(lora.addAdapter('check', config)).toHaveLength(256);
        lora.dispose();
        lora = new LoraModel(unet);
        loadLoraAdapter(lora, 'default', adapter, config);
        const outs: [string, string][] = [['unmerged', 'caseA.out_lora'], ['merged', 'caseA.out_lora_merged'], ['unmerged again', 'caseA.out_lora']];
        for (const [label, key] of outs) {
          if (label === 'merged') await lora.merge();
          if (label === 'unmerged again') await lora.unmerge();
          const y = unet.forward(sample, ts, ehs);
          await expectClose(y, get(cases, key), label);
          y.dispose();
        }
        lora.setActive([]);
        const base = unet.forward(sample, ts, ehs);
        await expectClose(base, get(cases, 'caseA.out_base'), 'no adapter');
        base.dispose();
        lora.setActive(['default']);
      }, backend === 'webgpu' ? 600_000 : undefined);

      it('saves peft files with the reference keys and reloads them', async () => {
        const files = await savePeftAdapter(lora, 'default');
        const saved = await SafetensorsFile.open(bytesSource(files['adapter_model.safetensors']));
        expect([...saved.tensors.keys()].sort()).toEqual([...adapter.keys()].sort());
        const again = new LoraModel(unet);
        lora.setActive([]);
        loadLoraAdapter(again, 'reloaded', await saved.readAll(), parseAdapterConfig(files['adapter_config.json']));
        const y = unet.forward(sample, ts, ehs);
        await expectClose(y, get(cases, 'caseA.out_lora'), 'reloaded');
        y.dispose();
        again.dispose();
        lora.dispose();
      });

      // Key naming is backend-independent; on WebGPU over SwiftShader its three extra UNet passes cost minutes.
      it.skipIf(backend === 'webgpu')('reads the diffusers 0.27 and kohya namings of the same adapter', async () => {
        const rows = (goldenJson('lora', 'unet-lora', 'key_names.json') as { rows: Record<string, string>[] }).rows;
        const renamed = (field: string) => new Map(rows.map((r) => [r[field], get(adapter, r.peft_saved_key)]));
        // kohya stores alpha per module; with the adapter's real alpha (8) it reproduces peft's output.
        const kohya = renamed('kohya_key');
        for (const r of rows) kohya.set(r.kohya_key.replace(/\.lora_(down|up)\.weight$/, '.alpha'), { shape: [], data: new Float32Array([8]) });
        let model = new LoraModel(unet);
        expect(loadLoraAdapter(model, 'kohya', kohya).alpha).toBe(8);
        let y = unet.forward(sample, ts, ehs);
        await expectClose(y, get(cases, 'caseA.out_lora'), 'kohya');
        y.dispose();
        model.dispose();
        // diffusers 0.27 files carry no alpha: the loader assumes alpha = r, as diffusers does.
        model = new LoraModel(unet);
        const used = loadLoraAdapter(model, 'diffusers', renamed('diffusers_0_27_key'));
        expect(used).toMatchObject({ r: 4, alpha: 4 });
        y = unet.forward(sample, ts, ehs);
        const reference = new LoraModel(unet);
        model.setActive([]);
        loadLoraAdapter(reference, 'peft-alpha-r', adapter, { ...parseAdapterConfig(readFileSync(golden('lora', 'unet-lora', 'adapter_config.json'), 'utf8')), alpha: 4 });
        const yRef = unet.forward(sample, ts, ehs);
        await expectClose(y, nhwcToNchw({ shape: yRef.shape, data: (await yRef.data()) as Float32Array }), 'diffusers naming');
        tf.dispose([y, yRef]);
        reference.dispose();
        model.dispose();
      });
    });
  });
}
