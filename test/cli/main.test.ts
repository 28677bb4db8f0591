// The `xpr` program: exit codes (the one mapping in exit.ts, and real ones from bin/xpr.js), help
// with defaults for every subcommand, --json, colour only on a terminal, and answering rm's question.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { CommanderError } from 'commander';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { errorText, EXIT, exitCodeOf, exitCodeOfProblems, UsageError } from '../../src/cli/exit.js';
import { main, type Io } from '../../src/cli/main.js';
import { useColor } from '../../src/cli/format.js';
import { ConfigError, UnreachableError, XprError } from '../../src/errors.js';
import { cliProject, openStore, seed, type CliProject } from './helpers.js';

const BIN = path.resolve('bin/xpr.js');

/** An error as Node's fs gives it when a file may not be written. */
function systemError(): NodeJS.ErrnoException {
  return Object.assign(new Error("EACCES: permission denied, open '/some/dir/jobs.db'"), {
    errno: -13, code: 'EACCES', syscall: 'open', path: '/some/dir/jobs.db',
  });
}
const COMMANDS = ['ls', 'rm', 'sync', 'reset_status', 'create_job', 'fail_job', 'db_unlock', 'db_rebuild', 'cancel', 'logs',
  'watch', 'systems', 'doctor', 'config'];
const ALIASES = ['reset-status', 'create-job', 'fail-job', 'db-unlock', 'db-rebuild'];

let p: CliProject;
beforeEach(() => {
  p = cliProject({ systems: { far: { host: 'nowhere.invalid', scheduler: 'local' } } });
});
afterEach(async () => { await p.cleanup(); });

/** Run bin/xpr.js in the test project. */
function xpr(args: string[], input?: string): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd: p.dir, env: { ...p.ctx.env, NO_COLOR: '1' }, encoding: 'utf8', input: input ?? '' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Run main() in this process with string streams. */
async function run(args: string[], opts: { tty?: boolean; errTty?: boolean; inTty?: boolean; env?: NodeJS.ProcessEnv; input?: string } = {}) {
  const stdout = Object.assign(new PassThrough(), { isTTY: opts.tty ?? false });
  const stderr = Object.assign(new PassThrough(), { isTTY: opts.errTty ?? false });
  const stdin = Object.assign(new PassThrough(), { isTTY: opts.inTty ?? false });
  stdin.end(opts.input ?? '');
  let out = '';
  let err = '';
  stdout.on('data', (b: Buffer) => { out += b.toString(); });
  stderr.on('data', (b: Buffer) => { err += b.toString(); });
  const io: Io = { stdout, stderr, stdin, env: opts.env ?? p.ctx.env, cwd: p.dir };
  const code = await main(args, io);
  return { code, stdout: out, stderr: err };
}

describe('exit codes (exit.ts)', () => {
  it.each([
    ['an XprError', new XprError('bad'), EXIT.user],
    ['a ConfigError', new ConfigError([{ path: 'systems.x', message: 'no' }]), EXIT.user],
    ['a UsageError', new UsageError('needs a filter'), EXIT.usage],
    ['an UnreachableError', new UnreachableError('h', 'no route'), EXIT.unreachable],
    ['a commander usage error', new CommanderError(1, 'commander.unknownOption', 'x'), EXIT.usage],
    ['commander help shown', new CommanderError(0, 'commander.helpDisplayed', '(outputHelp)'), EXIT.ok],
    ['a TypeError (a bug)', new TypeError('x is undefined'), EXIT.internal],
    ['a system error (the machine, not a bug)', systemError(), EXIT.user],
  ])('%s -> %i', (_what, err, code) => {
    expect(exitCodeOf(err)).toBe(code);
  });

  it('problems: none 0, any unreachable 3, else 1', () => {
    expect(exitCodeOfProblems([])).toBe(0);
    expect(exitCodeOfProblems([{ message: 'x', unreachable: false }])).toBe(1);
    expect(exitCodeOfProblems([{ message: 'x', unreachable: false }, { message: 'y', unreachable: true }])).toBe(3);
  });

  it('prints a user error without a stack, a bug with a plea and the stack only with XPR_DEBUG', () => {
    expect(errorText(new XprError('bad thing', { hint: 'do this' }), {})).toBe('xpr: bad thing\n  do this\n');
    const bug = new TypeError('x is undefined');
    expect(errorText(bug, {})).toMatch(/^xpr: internal error: x is undefined\nThis is a bug in xpr.*\n\(run with XPR_DEBUG=1 to see the stack\)\n$/);
    expect(errorText(bug, { XPR_DEBUG: '1' })).toContain('at ');
  });

  it('prints a system error (permission denied) with the path and what to check, not as a bug', () => {
    const text = errorText(systemError(), {});
    expect(text).toMatch(/^xpr: EACCES: permission denied, open '\/some\/dir\/jobs\.db'\n {2}Check the permissions of the path named/);
    expect(text).not.toMatch(/bug in xpr/);
  });
});

describe('bin/xpr.js', () => {
  it('--help lists every command and global option with defaults, and the exit codes', () => {
    const r = xpr(['--help']);
    expect(r.code).toBe(0);
    for (const c of COMMANDS) expect(r.stdout).toMatch(new RegExp(`\\n  ${c}[ |]`));
    expect(r.stdout).toContain('reset_status|reset-status');
    expect(r.stdout).toMatch(/--json +print results as JSON instead of text \(default: false\)/);
    expect(r.stdout).toContain('--dbfile <file>');
    expect(r.stdout).toMatch(/Exit codes:\n  0   ok\n  1   error[\s\S]*\n  2   usage[\s\S]*\n  3   a system could not be reached/);
  });

  it.each([...COMMANDS, ...ALIASES])('%s --help lists its options and the global ones', (c) => {
    const r = xpr([c, '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Usage: xpr /);
    expect(r.stdout).toContain('Global Options:');
    expect(r.stdout).toContain('Example');
  });

  it.each([
    ['ls', /-l, --long +long form.*\(default: false\)/s],
    ['sync', /-s, --status <list>[\s\S]*\(default: "ongoing"\)/],
    ['watch', /--interval <seconds> +seconds between refreshes \(at least 1\) \(default: 5\)/],
    ['rm', /-c, --clean [\s\S]*\(default: false\)/],
    ['create_job', /-e, --export <name> +name of the exported function \(default: "default"\)/],
    ['reset_status', /new_status +the status to set \(choices: "created", "submitted"/],
  ])('%s --help shows defaults', (c, re) => {
    expect(xpr([c, '--help']).stdout).toMatch(re);
  });

  it.each([
    ['ls on an empty project', ['ls'], 0, /^No matching jobs in JobsDB at .*jobs\.db\n$/, ''],
    ['rm without a filter', ['rm', '-y'], 2, '', /^xpr: xpr rm needs at least one of -i\/--id/],
    ['fail_job without a filter', ['fail_job', '-y'], 2, '', /needs at least one of/],
    ['an unknown status', ['ls', '-s', 'runing'], 1, '', /^xpr: Unknown job status "runing"/],
    ['an unknown command', ['lss'], 2, '', /unknown command 'lss'/],
    ['an unknown option', ['ls', '--bogus'], 2, '', /unknown option '--bogus'/],
    ['a missing argument', ['logs'], 2, '', /missing required argument 'id'/],
    ['a bad status for reset_status', ['reset_status', '-s', '*', 'ongoing'], 2, '', /Allowed choices are created, submitted/],
    ['an interval under 1 s', ['watch', '--interval', '0.5', '--once'], 2, '', /--interval must be at least 1 s/],
    ['an unknown system', ['doctor', 'nope'], 1, '', /^xpr: Unknown system "nope" \(known: far, local\)/],
    ['a system it cannot reach', ['doctor', 'far'], 3, /FAIL connect: .*nowhere\.invalid/, ''],
  ])('%s', (_what, args, code, out, err) => {
    const r = xpr(args as string[]);
    expect(r.code).toBe(code);
    if (out) expect(r.stdout).toMatch(out);
    if (err) expect(r.stderr).toMatch(err);
    expect(r.stderr).not.toMatch(/\n +at /);
  });

  it('rm asks on a terminal: y deletes, anything else keeps', async () => {
    seed(p, [{ name: 'one' }, { name: 'two' }]);
    const no = await run(['rm', '-n', 'one'], { inTty: true, input: 'n\n' });
    expect(no.code).toBe(0);
    expect(no.stderr).toMatch(/^Delete from the database 1 job\?\n  one_.*\nProceed\? \[y\/N\] $/);
    expect(no.stdout).toBe('Nothing deleted.\n');
    // Without a terminal nobody can answer: exit 2 (test/clear-errors.test.ts).
    expect(xpr(['rm', '-n', 'one'], 'y\n').code).toBe(2);
    const yes = await run(['rm', '-n', 'one'], { inTty: true, input: 'y\n' });
    expect(yes.stdout).toMatch(/^Deleted 1 job from /);
    const store = openStore(p);
    expect(store.list().map((j) => j.name)).toEqual(['two']);
    store.close();
  });
});

describe('main() output', () => {
  beforeEach(() => { seed(p, [{ name: 'x', patch: { status: 'succeeded', system: 'local', remoteId: '1', remoteStatus: 'done' } }]); });

  it('--json prints the data, before or after the command', async () => {
    for (const args of [['--json', 'ls'], ['ls', '--json']]) {
      const r = await run(args);
      expect(r.code).toBe(0);
      const data = JSON.parse(r.stdout) as { db: string; jobs: { name: string; createdAt: string; stageDir: string }[] };
      expect(data.jobs.map((j) => j.name)).toEqual(['x']);
      expect(data.jobs[0]!.createdAt).toBe('2024-03-01T12:00:00.000Z');
    }
    const systems = JSON.parse((await run(['systems', '--json'])).stdout) as { systems: { name: string }[] };
    expect(systems.systems.map((s) => s.name)).toEqual(['far', 'local']);
  });

  it('colours only on a terminal, never with NO_COLOR or --no-color', async () => {
    expect((await run(['ls'], { tty: true })).stdout).toContain('\x1b[32msucceeded\x1b[0m');
    expect((await run(['ls'], { tty: false })).stdout).not.toContain('\x1b[');
    expect((await run(['ls'], { tty: true, env: { ...p.ctx.env, NO_COLOR: '1' } })).stdout).not.toContain('\x1b[');
    expect((await run(['ls', '--no-color'], { tty: true })).stdout).not.toContain('\x1b[');
    expect(useColor({ isTTY: true }, { NO_COLOR: '' })).toBe(true);
  });

  it('shows progress on a terminal only, and exit code 3 for a system it cannot reach', async () => {
    seed(p, [{ name: 'far', patch: { status: 'started', system: 'far', remoteId: '9', remoteStatus: 'running' } }]);
    const tty = await run(['sync'], { errTty: true });
    expect(tty.code).toBe(3);
    expect(tty.stderr).toBe('\r\x1b[Ksyncing 1 job on far…\r\x1b[K');
    expect(tty.stdout).toMatch(/^Could not sync far: /);
    const pipe = await run(['sync']);
    expect(pipe.code).toBe(3);
    expect(pipe.stderr).toBe('');
  });

  it('--dbfile is taken from the working dir', async () => {
    const r = await run(['--dbfile', 'elsewhere.db', 'ls']);
    expect(r.stdout).toBe(`No matching jobs in JobsDB at ${path.join(p.dir, 'elsewhere.db')}\n`);
  });

  it('watch --once prints one line when not on a terminal, NDJSON with --json', async () => {
    const line = await run(['watch', '--once']);
    expect(line.stdout).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d succeeded=1\n$/);
    const json = await run(['watch', '--once', '--json']);
    expect(JSON.parse(json.stdout)).toMatchObject({ total: 1, counts: { succeeded: 1 } });
  });
});

describe('the xpr process on a closed pipe', () => {
  it('stops quietly when its reader has gone (xpr --help | head)', async () => {
    const { spawn } = await import('node:child_process');
    const child = spawn(process.execPath, [path.resolve('bin/xpr.js'), '--help'], { stdio: ['ignore', 'pipe', 'pipe'] });
    // Close the reading end before xpr writes: every write it makes then fails with EPIPE.
    child.stdout.destroy();
    let stderr = '';
    child.stderr.on('data', (b: Buffer) => { stderr += b.toString(); });
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    expect(stderr).not.toContain('EPIPE');
    expect(code).toBe(0);
  });
});
