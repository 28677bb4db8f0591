import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigError, XprError } from '../src/errors.js';
import { discoverProject, getSystem, loadConfig, projectRundir, type LoadedConfig } from '../src/config/index.js';

// Every test gets a fresh tree:  <tmp>/home (fake $HOME) with <tmp>/home/proj/sub as working dir.
let tmp: string;
let home: string;
let proj: string;
let cwd: string;

beforeEach(() => {
  tmp = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'xpr-config-')));
  home = path.join(tmp, 'home');
  proj = path.join(home, 'proj');
  cwd = path.join(proj, 'sub');
  fs.mkdirSync(cwd, { recursive: true });
});

afterEach(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

function writeConfig(dir: string, content: unknown): string {
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, 'config.json');
  fs.writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content, null, 2));
  return file;
}

function load(extraEnv: NodeJS.ProcessEnv = {}, at = cwd): LoadedConfig {
  return loadConfig({ cwd: at, home, env: { HOME: home, ...extraEnv } });
}

/** The ConfigError that `fn` throws (fails the test if it throws anything else or nothing). */
function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return e as ConfigError;
  }
  throw new Error('expected a ConfigError, nothing was thrown');
}

const slurmCluster = {
  host: 'me@cluster.example.org',
  scheduler: 'slurm',
  commands: ['module load a', 'module load b'],
  header: ['#SBATCH --nodes={num_nodes}'],
  partitions: {
    std: { num_cores: 32, max_time: '48h', max_mem: '180GB' },
    big: { num_cores: 64, max_time: '1-00:00:00', max_mem: '1TB', partition: 'bigmem' },
  },
};

describe('discoverProject', () => {
  it('uses only $EXPYRE_ROOT when set', () => {
    const root = path.join(tmp, 'elsewhere');
    const rootFile = writeConfig(root, { systems: {} });
    writeConfig(path.join(cwd, '_expyre'), { systems: {} });
    const p = discoverProject({ cwd, home, env: { HOME: home, EXPYRE_ROOT: root } });
    expect(p.rootDir).toBe(root);
    expect(p.dbPath).toBe(path.join(root, 'jobs.db'));
    expect(p.configFiles).toEqual([rootFile]);
  });

  it('treats EXPYRE_ROOT=@ as unset (search), as ExPyRe does', () => {
    const file = writeConfig(path.join(proj, '_expyre'), { systems: {} });
    const p = discoverProject({ cwd, home, env: { HOME: home, EXPYRE_ROOT: '@' } });
    expect(p.configFiles).toEqual([file]);
  });

  it('collects project dirs up to $HOME, shallowest first; the deepest holds jobs.db', () => {
    writeConfig(path.join(tmp, '_expyre'), { systems: {} }); // above HOME: not read
    const homeFile = writeConfig(path.join(home, '.expyre'), { systems: {} });
    const projFile = writeConfig(path.join(proj, '_expyre'), { systems: {} });
    fs.mkdirSync(path.join(cwd, '.expyre')); // deepest, without a config.json
    const p = discoverProject({ cwd, home, env: {} });
    expect(p.configFiles).toEqual([homeFile, projFile]);
    expect(p.rootDir).toBe(path.join(cwd, '.expyre'));
    expect(p.dbPath).toBe(path.join(cwd, '.expyre', 'jobs.db'));
    expect(p.projectDirs).toEqual([path.join(home, '.expyre'), path.join(proj, '_expyre'), path.join(cwd, '.expyre')]);
  });

  it('walks up to / when the working dir is outside $HOME', () => {
    const outside = path.join(tmp, 'outside');
    const deep = path.join(outside, 'a', 'b');
    fs.mkdirSync(deep, { recursive: true });
    const file = writeConfig(path.join(outside, '_expyre'), { systems: {} });
    const p = discoverProject({ cwd: deep, home, env: {} });
    expect(p.configFiles).toContain(file);
    expect(p.rootDir).toBe(path.join(outside, '_expyre'));
  });

  it('defaults to <cwd>/_expyre and creates nothing', () => {
    const p = discoverProject({ cwd, home, env: {} });
    expect(p.rootDir).toBe(path.join(cwd, '_expyre'));
    expect(p.configFiles).toEqual([]);
    expect(fs.existsSync(p.rootDir)).toBe(false);
    load();
    expect(fs.existsSync(p.rootDir)).toBe(false);
  });

  it('rejects _expyre and .expyre in the same dir, naming both', () => {
    fs.mkdirSync(path.join(proj, '_expyre'));
    fs.mkdirSync(path.join(proj, '.expyre'));
    const err = configError(() => discoverProject({ cwd, home, env: {} }));
    expect(err.message).toContain(path.join(proj, '_expyre'));
    expect(err.message).toContain(path.join(proj, '.expyre'));
  });

  it('rejects an EXPYRE_ROOT that is a file', () => {
    const file = path.join(tmp, 'afile');
    fs.writeFileSync(file, '');
    const err = configError(() => discoverProject({ cwd, home, env: { EXPYRE_ROOT: file } }));
    expect(err.message).toContain('is not a directory');
  });
});

describe('loadConfig: merging', () => {
  it('merges leaf by leaf: nested objects merge, arrays and scalars replace', () => {
    const homeFile = writeConfig(path.join(home, '.expyre'), { systems: { cluster: slurmCluster } });
    const projFile = writeConfig(path.join(proj, '_expyre'), {
      systems: { cluster: { commands: ['module load c'], partitions: { std: { max_time: '2h' } } } },
    });
    const { config, origins } = load();
    const c = getSystem(config, 'cluster');
    expect(c.commands).toEqual(['module load c']);
    expect(c.host).toBe('me@cluster.example.org');
    expect(c.partitions['std']).toEqual({ num_cores: 32, max_time: 7200, max_mem: 180 * 1024 ** 2 });
    expect(c.partitions['big']).toEqual({ num_cores: 64, max_time: 86400, max_mem: 1024 ** 3, partition: 'bigmem' });
    expect(origins.get('systems.cluster.partitions.std.max_time')).toBe(projFile);
    expect(origins.get('systems.cluster.partitions.std.num_cores')).toBe(homeFile);
    expect(origins.get('systems.cluster.commands')).toBe(projFile);
    expect(origins.get('systems.cluster.header')).toBe(homeFile);
    expect(origins.get('systems.cluster.script_exec')).toBe('built-in');
    expect(origins.get('systems.local.scheduler')).toBe('built-in');
  });

  it('"_DELETE_" removes a key inherited from a shallower file', () => {
    writeConfig(path.join(home, '.expyre'), { systems: { cluster: slurmCluster, old: slurmCluster } });
    writeConfig(path.join(proj, '_expyre'), {
      systems: { old: '_DELETE_', cluster: { header: '_DELETE_', partitions: { big: '_DELETE_' }, nothing: '_DELETE_' } },
    });
    const { config, origins } = load();
    expect(Object.keys(config.systems).sort()).toEqual(['cluster', 'local']);
    const c = getSystem(config, 'cluster');
    expect(Object.keys(c.partitions)).toEqual(['std']);
    expect(c.header).toEqual([]);
    expect(origins.get('systems.cluster.header')).toBe('built-in');
    expect([...origins.keys()].some((k) => k.startsWith('systems.old.'))).toBe(false);
  });

  it('uses only the EXPYRE_ROOT config, ignoring project dirs', () => {
    const root = path.join(tmp, 'root');
    writeConfig(root, { systems: { fromroot: { scheduler: 'local' } } });
    writeConfig(path.join(proj, '_expyre'), { systems: { fromproj: { scheduler: 'local' } } });
    const { config, paths } = load({ EXPYRE_ROOT: root });
    expect(Object.keys(config.systems).sort()).toEqual(['fromroot', 'local']);
    expect(paths.dbPath).toBe(path.join(root, 'jobs.db'));
  });

  it('local_stage_dir moves jobs.db and the stage dirs (relative to its file)', () => {
    writeConfig(path.join(proj, '_expyre'), { local_stage_dir: '../stage', systems: {} });
    const { config, paths, origins } = load();
    expect(paths.rootDir).toBe(path.join(proj, 'stage'));
    expect(paths.dbPath).toBe(path.join(proj, 'stage', 'jobs.db'));
    expect(config.local_stage_dir).toBe(path.join(proj, 'stage'));
    expect(getSystem(config, 'local').rundir).toBe(path.join(proj, 'stage'));
    expect(origins.get('local_stage_dir')).toBe(path.join(proj, '_expyre', 'config.json'));
  });
});

describe('loadConfig: systems and defaults', () => {
  it('has a built-in local system when there is no config at all', () => {
    const { config, paths, origins } = load();
    expect(Object.keys(config.systems)).toEqual(['local']);
    const local = getSystem(config, 'local');
    expect(local).toMatchObject({ scheduler: 'local', host: null, rundir: paths.rootDir, runsInPlace: true });
    expect(local.partitions).toEqual({
      local: { num_cores: os.availableParallelism(), max_time: 365 * 86400, max_mem: Math.floor(os.totalmem() / 1024) },
    });
    expect(origins.get('systems.local.partitions.local.num_cores')).toBe('built-in');
  });

  it('a user-defined local system replaces the built-in one', () => {
    const file = writeConfig(path.join(proj, '_expyre'), {
      systems: { local: { scheduler: 'slurm', host: 'node1', partitions: { p: { num_cores: 4, max_time: 60 } } } },
    });
    const { config, origins } = load();
    const local = getSystem(config, 'local');
    expect(local.scheduler).toBe('slurm');
    expect(local.host).toBe('node1');
    expect(Object.keys(local.partitions)).toEqual(['p']);
    expect(local.partitions['p']?.max_mem).toBeUndefined();
    expect(origins.get('systems.local.scheduler')).toBe(file);
  });

  it('fills ExPyRe and xpr defaults', () => {
    writeConfig(path.join(proj, '_expyre'), {
      systems: {
        cluster: slurmCluster,
        here: { scheduler: 'local', rundir: 'runs/' },
        abs: { scheduler: 'pbs', host: 'h', rundir: '/scratch/me/', queues: { q: { num_cores: 8, max_time: null } } },
      },
    });
    const { config, origins } = load({ EXPYRE_RSH: '/usr/bin/ssh -q' });
    const c = getSystem(config, 'cluster');
    expect(c).toMatchObject({
      rundir: 'run_expyre', runsInPlace: false, no_default_header: false, pre_submit_cmds: [], script_exec: '/bin/bash',
      remsh_cmd: '/usr/bin/ssh -q', max_array_size: 1000, node_command: 'node',
    });
    expect(origins.get('systems.cluster.remsh_cmd')).toBe('env EXPYRE_RSH');
    // No host: a relative rundir is under the local $HOME (ExPyRe); no partitions = the whole machine.
    const here = getSystem(config, 'here');
    expect(here.rundir).toBe(path.join(home, 'runs'));
    expect(here.partitions['local']?.num_cores).toBe(os.availableParallelism());
    const abs = getSystem(config, 'abs');
    expect(abs.rundir).toBe('/scratch/me');
    expect(abs.partitions['q']?.max_time).toBe(Number.POSITIVE_INFINITY);
  });

  it('accepts queues as partitions, with their origins', () => {
    const file = writeConfig(path.join(proj, '_expyre'), {
      systems: { sge: { host: 'h', scheduler: 'sge', queues: { 'all.q': { num_cores: 16, max_time: '1:00:00', max_mem: '64gb' } } } },
    });
    const { config, origins } = load();
    expect(getSystem(config, 'sge').partitions).toEqual({ 'all.q': { num_cores: 16, max_time: 3600, max_mem: 64 * 1024 ** 2 } });
    expect(origins.get('systems.sge.partitions.all.q.max_mem')).toBe(file);
  });

  it('rejects partitions and queues together', () => {
    writeConfig(path.join(proj, '_expyre'), {
      systems: { s: { ...slurmCluster, queues: slurmCluster.partitions } },
    });
    const err = configError(() => load());
    expect(err.issues.map((i) => i.path)).toEqual(['systems.s.queues']);
    expect(err.issues[0]?.message).toContain('not both');
  });

  it('getSystem names the known systems and where they are configured', () => {
    const file = writeConfig(path.join(proj, '_expyre'), { systems: { a: { scheduler: 'local' }, b: { scheduler: 'local' } } });
    const { config, paths } = load();
    let caught: unknown;
    try {
      getSystem(config, 'x', paths);
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(XprError);
    const err = caught as XprError;
    expect(err.message).toBe('Unknown system "x" (known: a, b, local)');
    expect(err.hint).toContain(file);
  });

  it('projectRundir follows ExPyRe naming, and is the stage dir for in-place systems', () => {
    writeConfig(path.join(proj, '_expyre'), { systems: { cluster: slurmCluster } });
    const { config, paths } = load();
    expect(projectRundir(getSystem(config, 'cluster'), config, paths.rootDir, { HOSTNAME: 'login1' }))
      .toBe(`run_expyre/login1-${proj.replace(/\//g, '_')}`);
    expect(projectRundir(getSystem(config, 'local'), config, paths.rootDir, {})).toBe(paths.rootDir);
  });
});

describe('loadConfig: errors', () => {
  it('reports bad JSON with file, line and column', () => {
    const file = writeConfig(path.join(proj, '_expyre'), '{\n  "systems": {\n    "a": }\n}\n');
    const err = configError(() => load());
    expect(err.issues).toHaveLength(1);
    expect(err.issues[0]?.file).toBe(file);
    expect(err.issues[0]?.message).toMatch(/line 3, column 10: expected a value/);
    expect(err.message).toContain(file);
    expect(err.message).not.toMatch(/\n\s+at /); // no stack trace in the message
  });

  it('reports unknown keys with their path and the valid keys', () => {
    const file = writeConfig(path.join(proj, '_expyre'), {
      sytems: {},
      systems: { c: { ...slurmCluster, hots: 'x', partitions: { std: { num_cores: 1, max_time: 1, mem: '1gb' } } } },
    });
    const err = configError(() => load());
    const byPath = new Map(err.issues.map((i) => [i.path, i]));
    expect([...byPath.keys()].sort()).toEqual(['systems.c.hots', 'systems.c.partitions.std.mem', 'sytems']);
    expect(byPath.get('systems.c.hots')?.message).toContain('valid keys: host, scheduler, partitions, queues, header');
    expect(byPath.get('systems.c.partitions.std.mem')?.message).toContain('valid keys: num_cores, max_time, max_mem, header, partition');
    expect(byPath.get('sytems')?.message).toContain('valid keys: systems, local_stage_dir, remote_rundir_submit_hostname');
    expect(byPath.get('systems.c.hots')?.file).toBe(file);
  });

  it('reports a bad max_time with the file it came from and its key path', () => {
    const homeFile = writeConfig(path.join(home, '.expyre'), { systems: { cluster: slurmCluster } });
    const projFile = writeConfig(path.join(proj, '_expyre'), { systems: { cluster: { partitions: { std: { max_time: '2 weeks' } } } } });
    const err = configError(() => load());
    expect(err.issues).toHaveLength(1);
    expect(err.issues[0]).toMatchObject({ file: projFile, path: 'systems.cluster.partitions.std.max_time' });
    expect(err.issues[0]?.message).toContain('2 weeks');
    expect(err.issues[0]?.file).not.toBe(homeFile);
  });

  it('reports every problem at once, each with its own file', () => {
    const homeFile = writeConfig(path.join(home, '.expyre'), {
      systems: { a: { scheduler: 'lsf', partitions: { p: { num_cores: 0, max_time: '1h' } } } },
    });
    const projFile = writeConfig(path.join(proj, '_expyre'), {
      systems: { b: { host: 'h', scheduler: 'slurm', header: 'not a list' }, c: { host: 'h' } },
    });
    const err = configError(() => load());
    const got = err.issues.map((i) => `${i.file === homeFile ? 'home' : i.file === projFile ? 'proj' : i.file}|${i.path}`).sort();
    expect(got).toEqual([
      'home|systems.a.partitions.p.num_cores',
      'home|systems.a.scheduler',
      'proj|systems.b.header',
      'proj|systems.b.partitions',
      'proj|systems.c.scheduler',
    ]);
    expect(err.message).toContain('(5 problems)');
    const header = err.issues.find((i) => i.path === 'systems.b.header');
    expect(header?.message).toBe('expected a list of strings (header lines, templated), got "not a list"');
    expect(err.issues.find((i) => i.path === 'systems.c.scheduler')?.message).toMatch(/^required key missing/);
  });

  it('names the known schedulers for an unknown one', () => {
    writeConfig(path.join(proj, '_expyre'), { systems: { a: { scheduler: 'lsf' } } });
    const err = configError(() => load());
    expect(err.issues[0]?.message).toBe('unknown scheduler "lsf" (known: slurm, pbs, torque, sge, local)');
  });

  it('says what a wrong type got', () => {
    writeConfig(path.join(proj, '_expyre'), {
      systems: { a: { scheduler: 'local', max_array_size: 2.5, partitions: { p: { num_cores: '4', max_time: 1, max_mem: 'lots' } } } },
    });
    const err = configError(() => load());
    const msg = new Map(err.issues.map((i) => [i.path, i.message]));
    expect(msg.get('systems.a.partitions.p.num_cores')).toBe('expected a positive integer (cores per node), got "4"');
    expect(msg.get('systems.a.max_array_size')).toContain('got 2.5');
    expect(msg.get('systems.a.partitions.p.max_mem')).toContain('"lots"');
  });

  it('rejects a top level that is not an object', () => {
    const file = writeConfig(path.join(proj, '_expyre'), '[1, 2]');
    const err = configError(() => load());
    expect(err.issues[0]).toMatchObject({ file, path: '' });
    expect(err.issues[0]?.message).toContain('JSON object');
  });
});

describe('loadConfig: JSON mistakes', () => {
  it('says where each mistake is and what JSON expected there', () => {
    const cases: [string, number, number, RegExp][] = [
      ['{"a": 1,}', 1, 9, /expected a double-quoted key, found '}' \(trailing commas are not allowed in JSON\)/],
      ['{\n"a": tru\n}', 2, 6, /expected a value/],
      ['[1 2]', 1, 4, /expected ',' or '\]' after a value in an array, found '2'/],
      ['{"a": "x\ny"}', 1, 9, /control character/],
      ['{"a": 1', 1, 8, /expected ',' or '}' after a value in an object, found end of file/],
      ['{} x', 1, 4, /after the end of the JSON value/],
      ['{"a" 1}', 1, 6, /expected ':' after the key, found '1'/],
      ['{a: 1}', 1, 2, /expected a double-quoted key or '}', found 'a'/],
      ['[1,]', 1, 4, /expected a value.*found '\]' \(trailing commas/],
      ['{"a": "\\q"}', 1, 8, /invalid string or number at '\\'/],
      ['{"a": -}', 1, 7, /expected a value.*found '-'/],
      ['{"a": "x', 1, 9, /ends inside a string or number/],
      ['', 1, 1, /expected a value.*found end of file/],
    ];
    for (const [text, line, column, message] of cases) {
      writeConfig(path.join(proj, '_expyre'), text);
      const err = configError(() => load());
      expect(err.issues, text).toHaveLength(1);
      expect(err.issues[0]?.message, text).toMatch(new RegExp(`^invalid JSON at line ${line}, column ${column}: `));
      expect(err.issues[0]?.message, text).toMatch(message);
    }
  });
});
