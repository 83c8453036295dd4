import { libraryBuild } from '../../tsup.shared.js';

// The data worker is its own entry: worker threads load it by path next to node.js.
export default libraryBuild(['src/index.ts', 'src/node.ts', 'src/data-worker.ts']);
