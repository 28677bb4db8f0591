// bashForAnyShell against the real login shells sshd may hand a command to: each shell is run as
// sshd runs it (`SHELL -c TEXT`) and must give the same stdout and exit code as bash running the
// raw command. tcsh and fish are required in CI (CI=true): tcsh is what many clusters give their
// users, and fish is the one login shell whose syntax is neither Bourne nor C shell;
// elsewhere a missing shell skips its tests with one line saying why.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bashForAnyShell } from '../../src/util/shell.js';
import { hostileCommands } from './hostile-commands.js';

const inCI = process.env.CI === 'true';
/** Login shells to try; `required` ones must be present in CI. */
const SHELLS = [
  { name: 'sh', required: true },
  { name: 'bash', required: true },
  { name: 'dash', required: false },
  { name: 'tcsh', required: true },
  { name: 'csh', required: false },
  { name: 'fish', required: true },
];

let home = '';
let tarDir = '';

beforeAll(() => {
  home = fs.mkdtempSync(path.join(os.tmpdir(), 'xpr-shells-'));
  tarDir = path.join(home, "tar dir 'x'");
  fs.mkdirSync(tarDir);
  fs.writeFileSync(path.join(tarDir, 'a.txt'), 'payload\n');
  fs.utimesSync(path.join(tarDir, 'a.txt'), 1_700_000_000, 1_700_000_000);
});

afterAll(() => {
  if (home) fs.rmSync(home, { recursive: true, force: true });
});

interface Ran {
  stdout: string;
  code: number | null;
  signal: NodeJS.Signals | null;
}

function run(file: string, text: string, input?: string, env: NodeJS.ProcessEnv = {}): Ran {
  const r = spawnSync(file, ['-c', text], {
    input: input ?? '',
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: home, LANG: 'C.UTF-8', LC_ALL: 'C.UTF-8', ...env },
    cwd: home,
    encoding: 'latin1', // bytes as they are: tar output and UTF-8 compared exactly
    timeout: 20_000,
  });
  if (r.error) throw r.error;
  return { stdout: r.stdout, code: r.status, signal: r.signal };
}

function which(name: string): string | undefined {
  const r = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() || undefined : undefined;
}

describe('bashForAnyShell', () => {
  it('sends plain commands as one single-quoted word, and the rest encoded', () => {
    expect(bashForAnyShell('echo a')).toBe("exec bash -c 'echo a'");
    expect(bashForAnyShell("echo 'a'")).toBe("exec bash -c 'echo '\\''a'\\'''");
    expect(bashForAnyShell('echo a!\nb')).toBe("exec bash -c 'eval $'\\''echo a\\041\\012b'\\'''");
    // Inside the quotes: no newline, no `!`, and no backslash but before an octal escape.
    for (const { cmd } of hostileCommands(tarDir)) {
      const text = bashForAnyShell(cmd);
      expect(text).not.toMatch(/[\n!]/);
      expect(text.replace(/'\\''/g, '')).not.toMatch(/\\(?!\d{3})/);
    }
  });

  for (const shell of SHELLS) {
    it(`runs hostile commands under "${shell.name} -c" exactly as bash runs them`, (ctx) => {
      const file = which(shell.name);
      if (!file) {
        if (inCI && shell.required) throw new Error(`${shell.name} is required in CI but not installed (apt-get install ${shell.name})`);
        ctx.skip(`${shell.name} not installed`);
        return;
      }
      for (const { cmd, input } of hostileCommands(tarDir)) {
        const want = run('bash', cmd, input);
        const got = run(file, bashForAnyShell(cmd), input);
        expect({ cmd, ...got }).toEqual({ cmd, ...want });
      }
      // Run by sshd (SSH_CLIENT set), bash reads ~/.bashrc, where sites define `module` and the
      // like: the bash that runs the command must too, whatever shell started it.
      const rcHome = path.join(home, `rc-${shell.name}`);
      fs.mkdirSync(rcHome, { recursive: true });
      fs.writeFileSync(path.join(rcHome, '.bashrc'), 'site_fn() { echo "site fn $1"; }\n');
      expect(run(file, bashForAnyShell('site_fn ok!'), '', { HOME: rcHome, SSH_CLIENT: '127.0.0.1 40000 22' }))
        .toEqual({ stdout: 'site fn ok!\n', code: 0, signal: null });
    });
  }
});
