// The `codiff` CLI (restore, train, eval, …) with Dawn's WebGPU available to `--backend webgpu`.
import './webgpu-node.js';

const { run } = await import('../../packages/cli/src/program.js');
process.exitCode = await run(process.argv.slice(2));
