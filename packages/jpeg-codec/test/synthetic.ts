import type { RawImage } from '../src/index.js';

/** Mulberry32: small seeded PRNG so generated images and mutations are reproducible. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * A photo-like RGB image: smooth colour gradients, a few hard-edged shapes, fine texture and sensor-like noise,
 * so the DCT sees the mix of flat areas, edges and detail a real photo has.
 */
export function syntheticPhoto(width: number, height: number, seed = 1): RawImage {
  const rand = rng(seed);
  const data = new Uint8Array(width * height * 3);
  const shapes = Array.from({ length: 6 }, () => ({
    cx: rand() * width, cy: rand() * height, r: (0.1 + rand() * 0.3) * Math.min(width, height),
    color: [rand() * 255, rand() * 255, rand() * 255], square: rand() < 0.5,
  }));
  const fx = 2 + rand() * 6, fy = 2 + rand() * 6;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const u = x / width, v = y / height;
      let r = 90 + 120 * u + 20 * Math.sin(fx * v * 6.283);
      let g = 60 + 100 * v + 25 * Math.sin(fy * u * 6.283);
      let b = 160 - 80 * u * v;
      for (const s of shapes) {
        const dx = x - s.cx, dy = y - s.cy;
        const inside = s.square ? Math.max(Math.abs(dx), Math.abs(dy)) < s.r : dx * dx + dy * dy < s.r * s.r;
        if (inside) [r, g, b] = [0.3 * r + 0.7 * s.color[0], 0.3 * g + 0.7 * s.color[1], 0.3 * b + 0.7 * s.color[2]];
      }
      const texture = 12 * Math.sin(x * 0.9 + 0.3 * y) * Math.sin(y * 1.3);
      const i = (y * width + x) * 3;
      data[i] = clamp(r + texture + (rand() - 0.5) * 16);
      data[i + 1] = clamp(g + texture + (rand() - 0.5) * 16);
      data[i + 2] = clamp(b + texture + (rand() - 0.5) * 16);
    }
  }
  return { width, height, channels: 3, data };
}

function clamp(v: number): number {
  return v < 0 ? 0 : v > 255 ? 255 : Math.round(v);
}

export function toGray(image: RawImage): RawImage {
  const data = new Uint8Array(image.width * image.height);
  for (let i = 0; i < data.length; i++) data[i] = image.data[i * image.channels];
  return { width: image.width, height: image.height, channels: 1, data };
}
