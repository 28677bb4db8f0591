// Hashing and staging 10,000 calls with a 1 KB item each (one job per item, the worst case), and
// re-attaching to all of them, against a bare sha256 + mkdir + write of the same bytes.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Job } from '../src/job/job.js';
import { Project } from '../src/job/project.js';
import { time, type Figure } from './measure.js';

const N = 10_000;

export async function benchStage(opModule: string): Promise<Figure[]> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xpr-bench-stage-'));
  const { touch } = (await import(opModule)) as { touch: (item: unknown) => unknown };
  const items = Array.from({ length: N }, (_v, i) => ({ i, payload: crypto.randomBytes(500).toString('hex') }));
  try {
    const root = path.join(dir, '_expyre');
    fs.mkdirSync(root);
    const project = Project.open({ cwd: dir, env: { ...process.env, EXPYRE_ROOT: root }, home: dir });
    const calls = items.map((item, i) => ({ name: `item${i}`, fn: touch, args: [item], project }));
    // Warm up bundling and the function lookup: they happen once per run, not per call.
    await Job.createMany([{ name: 'warm', fn: touch, args: [0], project }]);
    const stage = await time(() => Job.createMany(calls));
    const restart = await time(async () => {
      const again = await Job.createMany(calls);
      if (!again.every((j) => j.reattached)) throw new Error('restart made new jobs');
    });
    await project.close();

    const bareDir = path.join(dir, 'bare');
    fs.mkdirSync(bareDir);
    const bare = await time(() => {
      for (const item of items) {
        const text = JSON.stringify(item);
        const hash = crypto.createHash('sha256').update(text).digest('base64url');
        const d = path.join(bareDir, `run_${hash}`);
        fs.mkdirSync(d);
        fs.writeFileSync(path.join(d, 'call.json'), text);
      }
    });
    const bareLookup = await time(() => {
      for (const item of items) crypto.createHash('sha256').update(JSON.stringify(item)).digest('base64url');
    });
    return [
      { name: 'hash + stage 10,000 items of 1 KB', xprMs: stage, baselineMs: bare, target: '< 2000 ms', ok: stage < 2000,
        note: 'one job dir per item' },
      { name: 're-attach 10,000 finished calls', xprMs: restart, baselineMs: bareLookup, target: '< 1000 ms', ok: restart < 1000,
        note: 'baseline: hashing only' },
    ];
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
