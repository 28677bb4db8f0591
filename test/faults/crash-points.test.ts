// The driver killed with SIGKILL at each named point of a remote autoparallelize call, on the real
// SSH + SLURM cluster in a user's shape. After each kill a plain rerun must submit nothing twice
// (counted in SLURM's accounting) and write an output byte-identical to an undisturbed run's.
// The kill comes from xpr itself: XPR_TEST_CRASH_AT names the point (a hook for tests only).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeAllSshConnections } from '../../src/transport/ssh.js';
import { clusterShapeUnavailable, skipOrFail } from '../cluster/shape.js';
import { startSshd, type SshdHandle } from '../cluster/sshd.js';
import { faultProject, output, remoteEnv, runDriver, submissions } from './cluster.js';

const unavailable = await clusterShapeUnavailable();
skipOrFail('fault-injection tests', unavailable);

/** Where the driver is killed, in the order a call reaches them. */
const POINTS = ['before-intent', 'after-intent', 'upload', 'after-submit', 'fetch', 'output-write'];

describe.skipIf(unavailable !== undefined)('the driver killed at a named point', () => {
  let sshd: SshdHandle;
  let reference: string;

  beforeAll(async () => {
    sshd = await startSshd();
    const clean = faultProject(sshd);
    try {
      const r = await runDriver(clean, remoteEnv(clean));
      expect(r.code, r.stderr).toBe(0);
      reference = output(clean)!;
      expect(reference.trim().split('\n')).toHaveLength(10);
      expect(await submissions(clean)).toBe(1);
    } finally {
      clean.cleanup();
    }
  }, 180_000);
  afterAll(async () => {
    await closeAllSshConnections();
    await sshd?.stop();
  });

  for (const point of POINTS) {
    it(`${point}: the rerun submits nothing twice and writes the same output`, async () => {
      const p = faultProject(sshd);
      try {
        const killed = await runDriver(p, { ...remoteEnv(p), XPR_TEST_CRASH_AT: point });
        expect(killed.code, `the driver was not killed at ${point}:\n${killed.stderr}`).toBeNull();
        expect(output(p)).toBeUndefined();
        const rerun = await runDriver(p, remoteEnv(p));
        expect(rerun.code, rerun.stderr).toBe(0);
        expect(output(p)).toBe(reference);
        expect(await submissions(p)).toBe(1);
      } finally {
        p.cleanup();
      }
    }, 240_000);
  }
});
