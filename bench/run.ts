// `npm run bench`: xpr's figures beside bare baselines measured in the same run.
import path from 'node:path';
import { PACKAGE_ROOT } from '../src/util/paths.js';
import { printFigures, type Figure } from './measure.js';
import { benchStage } from './stage.js';
import { benchLs } from './ls.js';
import { benchStore } from './store.js';
import { benchPool } from './pool.js';
import { benchCluster } from './cluster.js';
import { benchExecutor } from './executor.js';

const figures: Figure[] = [];
const section = async (what: string, run: () => Promise<Figure[]>) => {
  process.stderr.write(`bench: ${what}...\n`);
  figures.push(...(await run()));
};

await section('job store', benchStore);
await section('xpr ls', benchLs);
await section('hashing and staging', () => benchStage(path.join(PACKAGE_ROOT, 'bench', 'ops.js')));
await section('local pool', benchPool);
await section('executor', benchExecutor);
await section('20 jobs over SSH to SLURM', () => benchCluster(path.join(PACKAGE_ROOT, 'bench', 'ops.js')));
console.log('');
printFigures(figures);
