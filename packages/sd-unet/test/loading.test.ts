import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { floatToHalf, halfToFloat, NnError, useBackend, writeSafetensors, type HostTensor } from '@codiff/nn';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { downloadDiffusersModel, loadUNet, loadVae } from '../src/node.js';
import { expectClose, golden, nhwcTensor, readAll } from '../../../test-support/tfjs.js';

/** A diffusers-layout repo on disk: unet (fp32 + fp16 variant), vae (2 shards, legacy attention names). */
function makeRepo(vaeWeights: Map<string, HostTensor>, unetWeights: Map<string, HostTensor>): string {
  const repo = mkdtempSync(join(tmpdir(), 'codiff-repo-'));
  mkdirSync(join(repo, 'unet'));
  mkdirSync(join(repo, 'vae'));
  copyFileSync(golden('unet-tiny', 'config.json'), join(repo, 'unet', 'config.json'));
  copyFileSync(golden('unet-tiny', 'weights.safetensors'), join(repo, 'unet', 'diffusion_pytorch_model.safetensors'));
  const half = Object.fromEntries([...unetWeights].map(([k, t]) => [k, { ...t, dtype: 'F16' as const }]));
  writeFileSync(join(repo, 'unet', 'diffusion_pytorch_model.fp16.safetensors'), writeSafetensors(half));
  copyFileSync(golden('vae-tiny', 'config.json'), join(repo, 'vae', 'config.json'));
  const legacy = (k: string) => k.replace('.to_q.', '.query.').replace('.to_k.', '.key.').replace('.to_v.', '.value.').replace('.to_out.0.', '.proj_attn.');
  const keys = [...vaeWeights.keys()];
  const shards = [keys.slice(0, 90), keys.slice(90)];
  const weightMap: Record<string, string> = {};
  shards.forEach((names, i) => {
    const file = `diffusion_pytorch_model-0000${i + 1}-of-00002.safetensors`;
    writeFileSync(join(repo, 'vae', file), writeSafetensors(Object.fromEntries(names.map((k) => [legacy(k), vaeWeights.get(k)!]))));
    for (const k of names) weightMap[legacy(k)] = file;
  });
  writeFileSync(join(repo, 'vae', 'diffusion_pytorch_model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: weightMap }));
  return repo;
}

/** Enough of the Hugging Face Hub API for @huggingface/hub's downloadFileToCacheDir, over one local repo. */
function fakeHub(repoDir: string, repoId: string): { server: Server; url: Promise<string>; resolves: () => number } {
  let resolves = 0;
  const commit = 'a'.repeat(40);
  const info = (path: string) => {
    try {
      const data = readFileSync(join(repoDir, path));
      return { path, type: 'file', size: data.length, oid: createHash('sha1').update(data).digest('hex'), lastCommit: { id: commit, title: 'init', date: '2026-01-01T00:00:00Z' } };
    } catch {
      return undefined;
    }
  };
  const server = createServer((req, res) => {
    const url = new URL(req.url!, 'http://x');
    if (req.method === 'POST' && url.pathname === `/api/models/${repoId}/paths-info/main`) {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        const { paths } = JSON.parse(body) as { paths: string[] };
        res.setHeader('Content-Type', 'application/json');
        res.end(JSON.stringify(paths.map(info).filter(Boolean)));
      });
      return;
    }
    const prefix = `/${repoId}/resolve/main/`;
    if (req.method === 'GET' && url.pathname.startsWith(prefix)) {
      const path = decodeURIComponent(url.pathname.slice(prefix.length));
      const meta = info(path);
      if (!meta) {
        res.writeHead(404, { 'X-Error-Code': 'EntryNotFound' }).end();
        return;
      }
      resolves++;
      const data = readFileSync(join(repoDir, path));
      const range = /bytes=(\d+)-(\d*)/.exec(req.headers.range ?? '');
      const headers = { ETag: `"${meta.oid}"`, 'Content-Type': 'application/octet-stream' };
      if (range) {
        const start = Number(range[1]);
        const end = range[2] ? Math.min(Number(range[2]), data.length - 1) : data.length - 1;
        res.writeHead(206, { ...headers, 'Content-Range': `bytes ${start}-${end}/${data.length}` }).end(data.subarray(start, end + 1));
      } else res.writeHead(200, headers).end(data);
      return;
    }
    res.writeHead(404).end();
  });
  const url = new Promise<string>((resolve) => server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as { port: number }).port}`)));
  return { server, url, resolves: () => resolves };
}

let repo: string;
let cases: Map<string, HostTensor>;
let vaeCases: Map<string, HostTensor>;
let unetWeights: Map<string, HostTensor>;

beforeAll(async () => {
  await useBackend('wasm');
  unetWeights = await readAll('unet-tiny', 'weights.safetensors');
  repo = makeRepo(await readAll('vae-tiny', 'weights.safetensors'), unetWeights);
  cases = await readAll('unet-tiny', 'cases.safetensors');
  vaeCases = await readAll('vae-tiny', 'cases.safetensors');
});

async function expectWorkingModels(root: string): Promise<void> {
  const unet = await loadUNet(join(root, 'unet'));
  const sample = nhwcTensor(cases.get('caseB.sample')!);
  const e = cases.get('caseB.encoder_hidden_states')!;
  const ehs = tf.tensor3d(e.data, e.shape as [number, number, number]);
  const out = unet.forward(sample, 500, ehs);
  await expectClose(out, cases.get('caseB.out')!, 'unet from folder');
  tf.dispose([sample, ehs, out]);
  unet.dispose();
  const vae = await loadVae(join(root, 'vae'));
  const z = nhwcTensor(vaeCases.get('decA.z')!);
  const img = vae.decode(z);
  await expectClose(img, vaeCases.get('decA.out')!, 'vae from sharded legacy folder');
  tf.dispose([z, img]);
  vae.dispose();
}

describe('loading diffusers folders', () => {
  it('UNet (single file) and VAE (sharded, legacy attention names) reproduce the golden outputs', async () => {
    await expectWorkingModels(repo);
  });

  it('the fp16 variant loads as float32 copies of the half values, here into host memory', async () => {
    const unet = await loadUNet(join(repo, 'unet'), { variant: 'fp16', host: true });
    expect(unet.convIn.weight.placement).toBe('host');
    const key = 'down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.weight';
    const loaded = (await unet.stateDict()).get(key)!.data;
    const source = unetWeights.get(key)!.data;
    for (let i = 0; i < source.length; i++) expect(loaded[i]).toBe(halfToFloat(floatToHalf(source[i])));
    unet.dispose();
  });

  it('encoderOnly loads the down and mid blocks of the same folder (the up blocks are not read)', async () => {
    const encoder = await loadUNet(join(repo, 'unet'), { encoderOnly: true });
    expect(encoder.upBlocks).toBeUndefined();
    const key = 'mid_block.attentions.0.proj_in.weight';
    expect((await encoder.stateDict()).get(key)!.data).toEqual(unetWeights.get(key)!.data);
    encoder.dispose();
  });

  it('clear errors: not a model folder, wrong model class, missing tensors', async () => {
    await expect(loadUNet(join(repo, 'nope'))).rejects.toThrow(/nope\/config\.json: no such file \(expected a diffusers model folder\)/);
    await expect(loadUNet(join(repo, 'vae'))).rejects.toThrow(/holds a AutoencoderKL, not a UNet2DConditionModel/);
    const broken = mkdtempSync(join(tmpdir(), 'codiff-broken-'));
    copyFileSync(golden('unet-tiny', 'config.json'), join(broken, 'config.json'));
    const partial = Object.fromEntries([...unetWeights].filter(([k]) => k !== 'conv_in.weight'));
    writeFileSync(join(broken, 'diffusion_pytorch_model.safetensors'), writeSafetensors(partial));
    await expect(loadUNet(broken)).rejects.toThrow(NnError);
    await expect(loadUNet(broken)).rejects.toThrow(/missing keys: conv_in\.weight/);
  });
});

describe('downloading from a Hugging Face Hub (local test server)', () => {
  const hub = { server: undefined as Server | undefined };
  afterAll(() => hub.server?.close());

  it('fetches config and weights (incl. shards) into the cache, then reuses it', async () => {
    const fake = fakeHub(repo, 'test/tiny-sd');
    hub.server = fake.server;
    const hubUrl = await fake.url;
    const cacheDir = mkdtempSync(join(tmpdir(), 'codiff-hf-cache-'));
    const fetched: string[] = [];
    const root = await downloadDiffusersModel({ repo: 'test/tiny-sd', hubUrl, cacheDir, onFile: (p) => fetched.push(p) });
    expect(fetched).toContain('vae/diffusion_pytorch_model-00002-of-00002.safetensors');
    expect(statSync(join(root, 'unet', 'diffusion_pytorch_model.safetensors')).size).toBe(statSync(golden('unet-tiny', 'weights.safetensors')).size);
    await expectWorkingModels(root);
    const before = fake.resolves();
    expect(await downloadDiffusersModel({ repo: 'test/tiny-sd', hubUrl, cacheDir })).toBe(root);
    expect(fake.resolves()).toBe(before); // everything came from the cache
  });
});
