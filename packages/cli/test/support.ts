import { run } from '../src/index.js';

/** Run the CLI in this process and collect its output lines and exit code. */
export async function codiff(...argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await run(argv, { out: (l) => out.push(l), err: (l) => err.push(l) });
  return { code, out: out.join('\n'), err: err.join('\n') };
}
