/**
 * Headers that make the page cross-origin isolated, so SharedArrayBuffer exists and TF.js's wasm backend can run
 * its kernels on several threads. Every server of the site sends them (`codiff serve`, Vite's dev and preview).
 */
export const CROSS_ORIGIN_ISOLATION = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
} as const;
