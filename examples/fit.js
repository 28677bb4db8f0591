// The driver script. Run it as is, then on a cluster with no change to it:
//
//   node fit.js                                            # local: in-process (or a pool, see below)
//   WFL_NUM_PYTHON_SUBPROCESSES=4 node fit.js              # local: 4 worker processes
//   WFL_EXPYRE_INFO=remoteinfo.json node fit.js            # the calls remoteinfo.json matches go out as jobs
//
// It reads inputs.jsonl from the working directory and writes scaled.jsonl and even.jsonl there. Once an
// output exists the call is skipped, so delete the outputs to run again.
import { ConfigSet, OutputSpec } from 'xpr';
import { calculate } from './ops.js';

async function stageA() {
  return calculate(new ConfigSet('inputs.jsonl'), new OutputSpec('scaled.jsonl'), { factor: 3 });
}

async function stageB(scaled) {
  // Items with an odd x give nothing: the output holds only the even ones, in input order.
  return calculate(scaled, new OutputSpec('even.jsonl'), { factor: 2, skipOdd: true });
}

const scaled = await stageA();
const even = await stageB(scaled);
console.log(`scaled.jsonl: ${await scaled.count()} items; even.jsonl: ${await even.count()} items`);
