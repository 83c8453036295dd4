// Shared by the step benchmarks: median step time, and a step's kernels by time (tf.profile).
import * as tf from '@tensorflow/tfjs-core';

/** The median of `steps` runs of `step`, after one that compiles kernels and warms caches. */
export async function medianStepMs(step: () => Promise<void>, steps: number): Promise<number> {
  const times: number[] = [];
  for (let s = 0; s < steps + 1; s++) {
    const t0 = performance.now();
    await step();
    if (s > 0) times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return times[times.length >> 1];
}

/** Run `step` once under tf.profile and print its 20 costliest kernels (time summed per kernel name) to stderr. */
export async function printKernelProfile(step: () => Promise<void>): Promise<void> {
  const profile = await tf.profile(step);
  const byKernel = new Map<string, { ms: number; calls: number }>();
  for (const k of profile.kernels) {
    const entry = byKernel.get(k.name) ?? { ms: 0, calls: 0 };
    byKernel.set(k.name, { ms: entry.ms + (k.kernelTimeMs as number), calls: entry.calls + 1 });
  }
  // Kernels run inside a custom op are counted in it as well: the total is an upper bound.
  const total = [...byKernel.values()].reduce((n, k) => n + k.ms, 0);
  console.error(`kernels of one step: ${total.toFixed(0)} ms`);
  for (const [name, k] of [...byKernel].sort((a, b) => b[1].ms - a[1].ms).slice(0, 20)) console.error(`${name.padEnd(28)} ${k.ms.toFixed(1).padStart(8)} ms ${String(k.calls).padStart(5)} calls`);
}
