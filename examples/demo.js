// `npm run demo`: eight calls of an expensive function run as one job array on the built-in
// `local` system (no configuration needed), with progress, then their results. Run it again: the
// jobs are found in _expyre/jobs.db by the hash of each call, so nothing runs twice.
import { Job } from 'xpr';
import { estimatePi } from './pi.js';

const SEEDS = [1, 2, 3, 4, 5, 6, 7, 8];
const SAMPLES = 2_000_000;

const t0 = Date.now();
const jobs = await Promise.all(SEEDS.map((seed) => Job.create({ name: `pi_${seed}`, fn: estimatePi, args: [seed, SAMPLES] })));
const reattached = jobs.filter((j) => j.reattached).length;
console.log(`${jobs.length} jobs recorded in ${jobs[0].project.store.path}` +
  (reattached ? ` (${reattached} re-attached from an earlier run: not run again)` : ''));

await Job.startMany(jobs, { system: 'local', resources: { num_cores: 1, max_time: '10m' } });
if (reattached < jobs.length) console.log(`submitted to the local queue as one job array: ${jobs[0].info.schedName}`);

let last = '';
await Job.waitAll(jobs, {
  onProgress(counts) {
    const line = Object.entries(counts).map(([status, n]) => `${status} ${n}`).join(', ');
    if (line !== last) console.log(`  ${((Date.now() - t0) / 1000).toFixed(1)} s  ${line}`);
    last = line;
  },
});

let inside = 0;
for (const job of jobs) {
  const { result, stdout } = await job.getResults();
  inside += result.inside;
  process.stdout.write(`  ${job.name}: pi ~ ${result.estimate.toFixed(5)}   (job printed: ${stdout.trim()})\n`);
}
const estimate = (4 * inside) / (SEEDS.length * SAMPLES);
console.log(`pi ~ ${estimate.toFixed(6)} from ${SEEDS.length * SAMPLES} samples in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
console.log('Run `npm run demo` again: every call re-attaches to its finished job, nothing is submitted.');
console.log('See the jobs with: npx xpr ls');
await jobs[0].project.close();
