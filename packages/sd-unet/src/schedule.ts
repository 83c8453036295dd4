/**
 * The DDPM "scaled_linear" noise schedule of Stable Diffusion: β_t from 0.00085 to 0.012 linear in √β over
 * 1000 steps, ᾱ_t = Π(1 − β). Computed in float32 like diffusers' scheduler.
 */
export function alphasCumprod(steps = 1000, betaStart = 0.00085, betaEnd = 0.012): Float32Array {
  const out = new Float32Array(steps);
  const a = Math.sqrt(betaStart);
  const b = Math.sqrt(betaEnd);
  let prod = 1;
  for (let i = 0; i < steps; i++) {
    const root = Math.fround(a + ((b - a) * i) / (steps - 1));
    const beta = Math.fround(root * root);
    prod = Math.fround(prod * Math.fround(1 - beta));
    out[i] = prod;
  }
  return out;
}

/** Coefficients of the one-step map ẑ₀ = (z_t − √(1−ᾱ_t)·ε) / √ᾱ_t at timestep t (CODiff: 499, OSEDiff: 999). */
export function oneStepCoefficients(t: number, cumprod = alphasCumprod()): { sqrtAlphaBar: number; sqrtOneMinusAlphaBar: number } {
  if (!Number.isInteger(t) || t < 0 || t >= cumprod.length) throw new RangeError(`timestep ${t} outside 0..${cumprod.length - 1}`);
  return { sqrtAlphaBar: Math.sqrt(cumprod[t]), sqrtOneMinusAlphaBar: Math.sqrt(1 - cumprod[t]) };
}
