// The bare BullMQ worker the executor bench compares with: one Worker (concurrency 1) per queue
// named in BENCH_QUEUES, each returning the job's data, as the bench's trivial stage does. Prints
// "ready" once its workers take jobs; exits after SIGTERM once they are closed.
import { Worker } from 'bullmq';

const url = process.env.BENCH_REDIS_URL;
const queues = (process.env.BENCH_QUEUES ?? '').split(',').filter(Boolean);
const workers = queues.map((q) => new Worker(q, async (job) => job.data, { connection: { url }, prefix: 'bare', concurrency: 1 }));
for (const w of workers) w.on('error', () => {});
await Promise.all(workers.map((w) => w.waitUntilReady()));
process.stdout.write('ready\n');
process.on('SIGTERM', () => {
  Promise.all(workers.map((w) => w.close())).finally(() => process.exit(0));
});
