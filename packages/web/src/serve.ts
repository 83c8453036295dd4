// `npm run web`: serve the built page and print its address (Ctrl-C stops). Options: --port N, --host H.
import { serveSite } from './node.js';

const args = process.argv.slice(2);
const option = (name: string) => {
  const at = args.indexOf(name);
  return at >= 0 ? args[at + 1] : undefined;
};
const port = option('--port');
if (port !== undefined && !/^\d+$/.test(port)) {
  console.error(`--port takes a number (got ${port})`);
  process.exit(2);
}
try {
  const site = await serveSite({ port: port === undefined ? undefined : Number(port), host: option('--host') });
  console.log(`codiff web: ${site.url}  (Ctrl-C stops)`);
} catch (e) {
  console.error(`codiff web: ${(e as Error).message}`);
  process.exit(1);
}
