// Long mutation-fuzz campaign: npm run fuzz -w @codiff/jpeg-codec -- --iterations 200000 --seed 7
import { fuzz } from '../test/fuzz-core.js';
import { fuzzSeeds } from '../test/seeds.js';

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};
const iterations = arg('iterations', 100_000);
const seed = arg('seed', 1);
const seeds = await fuzzSeeds();
const chunk = 10_000;
let failures = 0;
for (let done = 0, part = 0; done < iterations; done += chunk, part++) {
  const n = Math.min(chunk, iterations - done);
  const report = fuzz(seeds, n, seed * 7919 + part);
  failures += report.failures.length;
  for (const f of report.failures) console.log(`FAIL seed=${seed * 7919 + part} iteration=${f.iteration}: ${f.problem}`);
  console.log(
    `${done + n}/${iterations}: decoded ${report.decoded}, rejected ${JSON.stringify(report.rejected)}, slowest ${report.slowestMs.toFixed(1)} ms`,
  );
}
console.log(failures === 0 ? 'no failures' : `${failures} failures`);
process.exit(failures === 0 ? 0 : 1);
