// Smoke tests of the real test components: OpenSSH sshd on 127.0.0.1 and the one-node SLURM.
// A missing component skips with one line saying why, except in CI (CI=true), where it fails.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it, type TestContext } from 'vitest';
import { SSH_HOST_ALIAS, sshdAvailable, startSshd, type SshdHandle } from './sshd.js';
import { ensureSlurm } from './slurm.js';

const execFileP = promisify(execFile);
const inCI = process.env.CI === 'true';

/** Skip with one line naming why, or fail in CI where every component must be there. */
function requireComponent(ctx: TestContext, what: string, reason: string | undefined): void {
  if (reason === undefined) return;
  if (inCI) throw new Error(`${what} is required in CI but unavailable: ${reason}`);
  ctx.skip(`${what} unavailable: ${reason}`);
}

describe('sshd (real OpenSSH on 127.0.0.1)', () => {
  let sshd: SshdHandle | undefined;
  let reason: string | undefined = sshdAvailable();

  beforeAll(async () => {
    if (reason) return;
    try {
      sshd = await startSshd();
    } catch (e) {
      reason = (e as Error).message;
    }
  });
  afterAll(async () => {
    await sshd?.stop();
  });

  it('runs a command through the system ssh client, counted once in the log', async (ctx) => {
    requireComponent(ctx, 'sshd', reason);
    const s = sshd!;
    const { stdout } = await execFileP('ssh', ['-F', s.sshConfigFile, SSH_HOST_ALIAS, 'echo hi'], { timeout: 20_000 });
    expect(stdout).toBe('hi\n');
    expect(s.connectionsAccepted()).toBe(1);
    expect(s.hostKeyFingerprint).toMatch(/^SHA256:/);
    expect(readFileSync(s.knownHostsFile, 'utf8')).toContain(`[127.0.0.1]:${s.port} ssh-ed25519 `);
  });

  it('refuses an unknown host key with StrictHostKeyChecking', async (ctx) => {
    requireComponent(ctx, 'sshd', reason);
    const s = sshd!;
    const before = s.connectionsAccepted();
    const emptyKnownHosts = join(s.dir, 'known_hosts.empty');
    writeFileSync(emptyKnownHosts, '');
    const err = await execFileP(
      'ssh',
      ['-F', s.sshConfigFile, '-o', `UserKnownHostsFile=${emptyKnownHosts}`, SSH_HOST_ALIAS, 'echo hi'],
      { timeout: 20_000 },
    ).then(
      () => undefined,
      (e: { code?: number; stderr?: string }) => e,
    );
    expect(err).toBeDefined();
    expect(err!.code).toBe(255);
    expect(err!.stderr).toMatch(/Host key verification failed/);
    expect(s.connectionsAccepted()).toBe(before);
  });

  it('keeps its keys and port across restart()', async (ctx) => {
    requireComponent(ctx, 'sshd', reason);
    const s = sshd!;
    const port = s.port;
    await s.restart();
    expect(s.port).toBe(port);
    const { stdout } = await execFileP('ssh', ['-F', s.sshConfigFile, SSH_HOST_ALIAS, 'echo again'], { timeout: 20_000 });
    expect(stdout).toBe('again\n');
  });
});

describe('SLURM (real one-node cluster)', () => {
  let reason: string | undefined;
  let work: string | undefined;

  beforeAll(async () => {
    reason = await ensureSlurm();
    if (!reason) work = mkdtempSync(join(tmpdir(), 'xpr-slurm-smoke-'));
  });
  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('runs a 3-element job array; each element writes its output', async (ctx) => {
    requireComponent(ctx, 'SLURM', reason);
    const dir = work!;
    const script = join(dir, 'job.sh');
    writeFileSync(script, '#!/bin/bash\necho "element $SLURM_ARRAY_TASK_ID" > "out-$SLURM_ARRAY_TASK_ID.txt"\n', { mode: 0o755 });
    const { stdout } = await execFileP(
      'sbatch',
      ['--parsable', '--array=0-2', '-J', 'xpr-smoke-array', '-o', join(dir, 'slurm-%A_%a.out'), script],
      { cwd: dir, timeout: 20_000 },
    );
    const id = stdout.trim();
    expect(id).toMatch(/^\d+$/);
    // Poll squeue (sbatch --wait polls at 2 s, 4 s, ... and makes this test 3x slower).
    const deadline = Date.now() + 50_000;
    for (;;) {
      const { stdout: q } = await execFileP('squeue', ['-h', '-r', '-j', id, '-o', '%i %T'], { timeout: 10_000 });
      if (!q.trim()) break;
      if (Date.now() > deadline) throw new Error(`array ${id} still queued after 50 s:\n${q}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    for (const i of [0, 1, 2]) {
      const f = join(dir, `out-${i}.txt`);
      expect(existsSync(f), `${f} written`).toBe(true);
      expect(readFileSync(f, 'utf8')).toBe(`element ${i}\n`);
    }
  });
});
