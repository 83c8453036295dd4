// Full-size SD 2.1-base UNet and VAE with random weights on wasm: a 256×256 image's forward pass (UNet on 32×32
// latents, VAE encode + decode at 256²), with timings and peak RSS. The UNet's 3.5 GB of float32 weights do not
// fit wasm32's 4 GiB heap next to XNNPACK's packed copies, so they are held on the host and uploaded per layer.
//   npx tsx bench/fullsize.ts        (or: nx run sd-unet:fullsize)
import * as tf from '@tensorflow/tfjs-core';
import { useBackend, withParameterPlacement } from '@codiff/nn';
import { AutoencoderKL, oneStepCoefficients, SD21_UNET_CONFIG, SD21_VAE_CONFIG, UNet2DConditionModel } from '../src/index.js';

const mb = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MiB`;
const peakRss = () => process.resourceUsage().maxRSS * 1024;
const count = (m: { parameters(): { size: number }[] }) => m.parameters().reduce((s, p) => s + p.size, 0);
const time = async <T>(label: string, f: () => T | Promise<T>): Promise<T> => {
  const t = performance.now();
  const r = await f();
  console.log(`${label}: ${((performance.now() - t) / 1000).toFixed(1)} s, peak RSS ${mb(peakRss())}`);
  return r;
};

await useBackend('wasm');
console.log(`backend ${tf.getBackend()}, node ${process.version}`);

const vae = await time('build VAE (random weights)', () => new AutoencoderKL(SD21_VAE_CONFIG));
console.log(`  VAE parameters: ${(count(vae) / 1e6).toFixed(1)} M`);
const image = tf.randomUniform([1, 256, 256, 3], -1, 1) as tf.Tensor4D;
const latents = await time('VAE encode 256²', async () => {
  const dist = vae.encode(image);
  const z = tf.mul(dist.mean, SD21_VAE_CONFIG.scalingFactor) as tf.Tensor4D;
  await z.data();
  tf.dispose([dist.moments, dist.mean, dist.logvar, dist.std]);
  return z;
});
console.log(`  latents ${JSON.stringify(latents.shape)}`);

const unet = await time('build UNet (random weights, host-held)', () =>
  withParameterPlacement('host', () => new UNet2DConditionModel(SD21_UNET_CONFIG)),
);
console.log(`  UNet parameters: ${(count(unet) / 1e6).toFixed(1)} M`);
const context = tf.randomNormal([1, 77, SD21_UNET_CONFIG.crossAttentionDim]) as tf.Tensor3D;
const restored = await time('UNet forward at t=499 on 32×32 latents + one-step map', async () => {
  const eps = unet.forward(latents, 499, context);
  const { sqrtAlphaBar, sqrtOneMinusAlphaBar } = oneStepCoefficients(499);
  const z0 = tf.tidy(() => tf.div(tf.sub(latents, tf.mul(eps, sqrtOneMinusAlphaBar)), sqrtAlphaBar)) as tf.Tensor4D;
  await z0.data();
  eps.dispose();
  return z0;
});
unet.dispose();

const out = await time('VAE decode to 256²', async () => {
  const y = vae.decode(tf.div(restored, SD21_VAE_CONFIG.scalingFactor) as tf.Tensor4D);
  await y.data();
  return y;
});
console.log(`  output ${JSON.stringify(out.shape)}, finite: ${tf.all(tf.isFinite(out)).dataSync()[0] === 1}`);
tf.dispose([image, latents, context, restored, out]);
vae.dispose();
console.log(`peak RSS ${mb(peakRss())}, tensors left ${tf.memory().numTensors}`);
