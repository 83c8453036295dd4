import { libraryBuild } from '../../tsup.shared.js';

export default libraryBuild(['src/index.ts', 'src/node.ts']);
