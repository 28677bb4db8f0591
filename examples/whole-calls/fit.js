// Two levels of whole calls, as wfl's GAP fits: `simpleFit` fits one stage, `multistageFit` runs
// several stages of simpleFit. Each is a remoteCall with its own variable, so the same driver
// (run.js) sends each simple fit as its own job, the whole multistage fit as one job, or nothing,
// by environment variables only. This module is what the jobs import: keep the wrappers exported here.
import fs from 'node:fs';
import { remoteCall } from 'xpr';

/** Least squares line y = a x + b through the points of a JSON Lines file, shrunk by `ridge`. */
async function simpleFitImpl(trainingFile, { stage, ridge = 0, start = { a: 0, b: 0 } }) {
  const points = fs.readFileSync(trainingFile, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
  const n = points.length;
  const mx = points.reduce((s, p) => s + p.x, 0) / n;
  const my = points.reduce((s, p) => s + p.y, 0) / n;
  const sxy = points.reduce((s, p) => s + (p.x - mx) * (p.y - my), 0);
  const sxx = points.reduce((s, p) => s + (p.x - mx) ** 2, 0);
  // Ridge pulls the slope towards the previous stage's: each stage refines the one before.
  const a = (sxy + ridge * start.a) / (sxx + ridge);
  const b = my - a * mx;
  const model = { stage, a, b, n };
  fs.writeFileSync(`model_${stage}.json`, `${JSON.stringify(model)}\n`);
  console.log(`stage ${stage}: a=${a.toFixed(4)} b=${b.toFixed(4)} (pid ${process.pid})`);
  return { ...model, pid: process.pid };
}

export const simpleFit = remoteCall(simpleFitImpl, {
  name: 'simple_fit',
  remoteInfoEnv: 'MYFIT_SIMPLE_FIT_REMOTEINFO',
  inputFiles: ['train.jsonl'],
  outputFiles: ['model_*.json'],
});

/** Every stage in turn, each starting from the one before. */
async function multistageFitImpl(trainingFile, stages) {
  const summaries = [];
  let start = { a: 0, b: 0 };
  for (const [stage, params] of stages.entries()) {
    const summary = await simpleFit(trainingFile, { ...params, stage, start });
    summaries.push(summary);
    start = { a: summary.a, b: summary.b };
  }
  return summaries;
}

export const multistageFit = remoteCall(multistageFitImpl, {
  name: 'multistage_fit',
  remoteInfoEnv: 'MYFIT_MULTISTAGE_FIT_REMOTEINFO',
  inputFiles: ['train.jsonl'],
  outputFiles: ['model_*.json'],
});
