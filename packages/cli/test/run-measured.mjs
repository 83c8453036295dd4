// Runs the built codiff in this process and, on exit, writes its peak resident memory (kB) to the file named by
// CODIFF_MEASURE: the hostile-input tests bound what each case may cost.
import { writeFileSync } from 'node:fs';

process.on('exit', () => writeFileSync(process.env.CODIFF_MEASURE, String(process.resourceUsage().maxRSS)));
const bin = new URL('../dist/bin.js', import.meta.url);
process.argv = [process.argv[0], bin.pathname, ...process.argv.slice(2)];
await import(bin.href);
