// The small mistakes a new user makes, each with a message that names the cause and the way on, and
// nothing made or left behind: a mistyped import, a string for a function, a request no partition
// can take, rm with nobody to ask, a zero memory limit, a WFL_EXPYRE_INFO file that is not there, a
// mistyped EXPYRE_ROOT. (SSH host keys and logins: test/transport/.)
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadExpyreInfo } from '../src/autopara/remoteinfo.js';
import { discoverProject, loadConfig } from '../src/config/index.js';
import { ConfigError, XprError } from '../src/errors.js';
import { Job } from '../src/job/job.js';
import { Project } from '../src/job/project.js';
import { Resources } from '../src/resources/resources.js';
import type { Partition } from '../src/resources/types.js';
import { cliProject, jobRows, OPS, seed, type CliProject } from './cli/helpers.js';
import { tempProject, type TempProject } from './helpers/project.js';
import { thrown } from './helpers/thrown.js';

const BIN = path.resolve('bin/xpr.js');
const GB = 1024 ** 2;
const HOUR = 3600;

/** Every file and dir under `dir`, relative, sorted: what a failed call must leave as it was. */
function tree(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return (fs.readdirSync(dir, { recursive: true }) as string[]).sort();
}

async function rejection(p: Promise<unknown>): Promise<XprError> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(XprError);
  return err as XprError;
}


describe('Job.create with something that is not a function as fn', () => {
  let t: TempProject;
  let root: string;
  beforeEach(() => {
    t = tempProject();
    root = t.project.paths.rootDir;
  });
  afterEach(async () => { await t.cleanup(); });

  it('undefined (a mistyped import name): says so, and makes nothing', async () => {
    const before = tree(root);
    const e = await rejection(Job.create({ name: 'add', fn: undefined as never, args: [1, 2], project: t.project }));
    expect(e.message).toBe('`fn` must be a function exported from a module; got undefined (check the import name)');
    expect(e.hint).toMatch(/export it, and import it from your script/);
    expect(tree(root)).toEqual(before);
  });

  it('a string: says it got a string, not that a function was defined in the entry script', async () => {
    const before = tree(root);
    const e = await rejection(Job.create({ name: 'add', fn: 'add' as never, project: t.project }));
    expect(e.message).toMatch(/^`fn` must be a function exported from a module; got the string "add" \(pass the function itself/);
    expect(e.message).not.toMatch(/anonymous|entry script/);
    expect(tree(root)).toEqual(before);
  });

  it('in createMany: names the call, and stages none of the others', async () => {
    const { double } = (await import(OPS)) as { double: (x: number) => number };
    const before = tree(root);
    const e = await rejection(Job.createMany([
      { name: 'ok', fn: double, args: [1], project: t.project },
      { name: 'bad', fn: null as never, args: [2], project: t.project },
    ]));
    expect(e.message).toBe('`calls[1].fn` must be a function exported from a module; got null');
    expect(tree(root)).toEqual(before);
  });
});

describe('No partition fits', () => {
  const parts: Record<string, Partition> = {
    short: { num_cores: 16, max_time: 1 * HOUR, max_mem: 64 * GB },
    other: { num_cores: 16, max_time: 1 * HOUR, max_mem: 64 * GB },
  };

  it('lists every reason of every partition: time, cores and memory at once', () => {
    const r = Resources.parse({ num_cores: 20, max_time: '2h', max_mem_tot: '200gb', partitions: 'short' });
    const e = thrown(() => r.findNodes(parts));
    const line = (key: string) => e.message.split('\n').find((l) => l.startsWith(`  ${key}:`)) ?? '';
    expect(line('short')).toBe('  short: max_time 02:00:00 is longer than its limit 01:00:00; ' +
      '20 cores are not a multiple of its 16 cores per node (exact_fit); needs 100gb per node, its nodes have 64gb');
    // Also for a partition the regexps leave out: widening them would not be enough.
    expect(line('other')).toMatch(/^ {2}other: not matched by partitions \["short"\] .*; max_time .*; 20 cores .*; needs 100gb per node/);
    expect(e.hint).toMatch(/shorter max_time.*exact_fit: false.*less memory/);
    expect(e.hint).not.toMatch(/widen/);
  });

  it('counts memory per core over the whole nodes the cores would take', () => {
    const r = Resources.parse({ num_cores: 20, max_time: '30m', max_mem_per_core: '8gb' });
    expect(thrown(() => r.findNodes({ short: parts.short! })).message)
      .toContain('short: 20 cores are not a multiple of its 16 cores per node (exact_fit); needs 8gb per core × 16 cores = 128gb per node, its nodes have 64gb');
  });
});

describe('memory limits must be more than 0', () => {
  let dir: string;
  beforeEach(() => { dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'xpr-mem-'))); });
  afterEach(() => { fs.rmSync(dir, { recursive: true, force: true }); });

  const configWith = (maxMem: unknown) => {
    const root = path.join(dir, '_expyre');
    fs.mkdirSync(root, { recursive: true });
    fs.writeFileSync(path.join(root, 'config.json'), JSON.stringify({
      systems: { c: { scheduler: 'slurm', host: 'h', partitions: { p: { num_cores: 4, max_time: '1h', max_mem: maxMem } } } },
    }));
    return root;
  };

  it.each(['0gb', 0, '0 MB'])('a partition\'s max_mem %j is refused, naming the file and key', (maxMem) => {
    const root = configWith(maxMem);
    let err: unknown;
    try {
      loadConfig({ cwd: dir, home: dir, env: { EXPYRE_ROOT: root } });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const issue = (err as ConfigError).issues[0]!;
    expect(issue).toMatchObject({ file: path.join(root, 'config.json'), path: 'systems.c.partitions.p.max_mem' });
    expect(issue.message).toMatch(/a memory limit must be more than 0 \(null means no limit\)/);
  });

  it('null still means no limit', () => {
    const root = configWith(null);
    expect(loadConfig({ cwd: dir, home: dir, env: { EXPYRE_ROOT: root } }).config.systems['c']!.partitions['p']!.max_mem).toBeUndefined();
  });

  it('xpr systems exits 1 on such a config', () => {
    const root = configWith('0gb');
    const r = spawnSync(process.execPath, [BIN, 'systems'], { cwd: dir, env: { ...process.env, EXPYRE_ROOT: root, HOME: dir }, encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/systems\.c\.partitions\.p\.max_mem: Invalid memory "0gb": a memory limit must be more than 0/);
  });

  it.each([
    ['max_mem_tot', '0gb'], ['max_mem_tot', 0], ['max_mem_per_core', '0kb'], ['max_mem_per_core', '-1gb'], ['max_mem_tot', -5],
  ])('resources %s %j are refused', (key, value) => {
    const e = thrown(() => Resources.parse({ num_cores: 1, max_time: 60, [key]: value }));
    expect(e.message).toMatch(new RegExp(`resources\\.${key}: .*(more than 0|negative)`));
  });
});

describe('WFL_EXPYRE_INFO naming a file that cannot be read', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'xpr-wei-')));
    fs.mkdirSync(path.join(dir, 'remoteinfo'));
  });
  afterEach(() => { fs.rmSync(dir, { recursive: true, force: true }); });

  it.each([
    ['a missing file', 'remotinfo.json', 'remotinfo.json', 'which does not exist'],
    ['a directory', 'remoteinfo', 'remoteinfo', 'which is a directory, not a file'],
    ['a directory, with a slash', './remoteinfo/', 'remoteinfo', 'which is a directory, not a file'],
  ])('%s: names the variable, the path and why', (_what, value, file, why) => {
    const before = tree(dir);
    const e = thrown(() => loadExpyreInfo({ WFL_EXPYRE_INFO: value }, dir));
    expect(e.message).toBe(`WFL_EXPYRE_INFO=${JSON.stringify(value)} names the file ${path.join(dir, file)}, ${why}`);
    expect(e.hint).toContain(`relative to the working directory ${dir}`);
    expect(tree(dir)).toEqual(before);
  });

  it('broken JSON text is reported as such, not as a missing file', () => {
    const e = thrown(() => loadExpyreInfo({ WFL_EXPYRE_INFO: '{"sys_name": "local", ' }, dir));
    expect(e.message).toMatch(/^WFL_EXPYRE_INFO="\{\\"sys_name\\": \\"local\\", " is neither valid JSON\/YAML/);
  });
});

describe('a mistyped EXPYRE_ROOT', () => {
  let dir: string;
  let missing: string;
  beforeEach(() => {
    dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'xpr-root-')));
    fs.mkdirSync(path.join(dir, '_expyre'));
    missing = path.join(dir, '_expyer');
  });
  afterEach(() => { fs.rmSync(dir, { recursive: true, force: true }); });

  it('is an error naming the variable and the path', () => {
    let err: unknown;
    try {
      discoverProject({ cwd: dir, home: dir, env: { EXPYRE_ROOT: missing } });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).message).toContain(`EXPYRE_ROOT=${missing} does not exist`);
    expect((err as ConfigError).hint).toContain(`mkdir -p ${missing}`);
  });

  it('creates nothing: not the dir, no jobs.db, no job', async () => {
    const before = tree(dir);
    const env = { ...process.env, EXPYRE_ROOT: missing, HOME: dir };
    expect(() => Project.open({ cwd: dir, env, home: dir })).toThrow(/EXPYRE_ROOT=.*_expyer does not exist/);
    expect(tree(dir)).toEqual(before);
  });

  it('xpr systems exits 1 and says so', () => {
    const before = tree(dir);
    const r = spawnSync(process.execPath, [BIN, 'systems'], { cwd: dir, env: { ...process.env, EXPYRE_ROOT: missing, HOME: dir }, encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`EXPYRE_ROOT=${missing} does not exist`);
    expect(r.stdout).not.toMatch(/built-in system/);
    expect(tree(dir)).toEqual(before);
  });
});

describe('a destructive command with no terminal to ask on and no -y', () => {
  let p: CliProject;
  beforeEach(() => {
    p = cliProject();
    seed(p, [{ name: 'one', dir: true }, { name: 'two', patch: { status: 'failed' } }]);
  });
  afterEach(async () => { await p.cleanup(); });

  const rows = () => jobRows(p);

  it.each([['rm'], ['fail_job'], ['cancel']])('%s exits 2 and changes nothing, also when y is piped in', (cmd) => {
    const before = { rows: rows(), tree: tree(p.dir) };
    for (const input of ['', 'y\n']) {
      const r = spawnSync(process.execPath, [BIN, cmd, '-n', 'one'], { cwd: p.dir, env: { ...p.ctx.env, NO_COLOR: '1' }, encoding: 'utf8', input });
      expect(r.status).toBe(2);
      expect(r.stderr).toMatch(/nothing done: there is no terminal to ask on, and this needs confirmation\n {2}Pass -y\/--yes/);
      expect(r.stdout).toBe('');
    }
    expect({ rows: rows(), tree: tree(p.dir) }).toEqual(before);
  });

  it('rm -y goes ahead', () => {
    const r = spawnSync(process.execPath, [BIN, 'rm', '-y', '-n', 'one'], { cwd: p.dir, env: { ...p.ctx.env, NO_COLOR: '1' }, encoding: 'utf8' });
    expect({ code: r.status, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
    expect(rows()).toEqual(['two:failed']);
  });
});
