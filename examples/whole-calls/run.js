// The driver script: a three-stage fit. It runs unchanged in three ways (see README.md):
//
//   node run.js                                                         # everything in this process
//   MYFIT_SIMPLE_FIT_REMOTEINFO=simple.remoteinfo.json node run.js      # each stage is a job (3 jobs)
//   MYFIT_MULTISTAGE_FIT_REMOTEINFO=multistage.remoteinfo.json node run.js   # the whole fit is 1 job
//
// Each writes model_0.json .. model_2.json in the working dir and prints the stages' summaries.
import { multistageFit } from './fit.js';

const summaries = await multistageFit('train.jsonl', [{ ridge: 0 }, { ridge: 10 }, { ridge: 100 }]);
for (const s of summaries) console.log(`stage ${s.stage}: a=${s.a.toFixed(4)} b=${s.b.toFixed(4)} ran in pid ${s.pid}`);
console.log(`driver pid ${process.pid}`);
