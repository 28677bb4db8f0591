// What a user reads when their own script calls xpr wrongly and does not catch the error: a real
// `node` script importing 'xpr' (as an installed package), run as a user runs it. The message, the
// hint and the script's own file:line; xpr's internal frames only with XPR_DEBUG=1.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { removeProjectDir } from './helpers/localq.js';

const PACKAGE_ROOT = path.resolve('.');

/** Each case is one line of the script, marked with its name; the script runs the one named in argv. */
const SCRIPT = `import { ConfigSet, Job, OutputSpec, Project, RemoteInfo } from 'xpr';
import { add } from './ops.mjs';

async function main(which) {
  if (which === 'create') await Job.create({ name: 'add', fn: undefined }); // @create
  if (which === 'getResults') {
    const job = await Job.create({ name: 'add', fn: add, args: [1, 2] });
    await job.getResults(); // @getResults
  }
  if (which === 'project') Project.open({ env: { EXPYRE_ROOT: 'no_such_dir' } }); // @project
  if (which === 'configset') new ConfigSet('missing.jsonl'); // @configset
  if (which === 'outputspec') new OutputSpec([]); // @outputspec
  if (which === 'remoteinfo') new RemoteInfo({ sys_name: 'cluster', resources: { num_cores: 4 } }); // @remoteinfo
}

await main(process.argv[2]);
`;

const CASES = [
  { which: 'create', message: 'XprError: `fn` must be a function exported from a module; got undefined (check the import name)', hint: 'Define the function at the top level of a module file' },
  { which: 'getResults', message: /XprError: Job add_\S+ has not been started/, hint: 'Call start() first.' },
  { which: 'project', message: 'ConfigError: Cannot use EXPYRE_ROOT (1 problem):', hint: 'Check its spelling.' },
  { which: 'configset', message: 'XprError: Input file not found: missing.jsonl', hint: 'Check the path (and fileRoot, if given).' },
  { which: 'outputspec', message: 'XprError: OutputSpec got an empty list of files', hint: 'Pass no files to keep outputs in memory.' },
  { which: 'remoteinfo', message: 'ConfigError: Invalid RemoteInfo (1 problem):\n  resources.max_time: required', hint: 'Fix each field named; RemoteInfo fields: sys_name,' },
];

let dir = '';
beforeAll(() => {
  dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'xpr-script-errors-')));
  // Installed as a user installs it: node_modules/xpr, resolved to where the package is.
  fs.mkdirSync(path.join(dir, 'node_modules'));
  fs.symlinkSync(PACKAGE_ROOT, path.join(dir, 'node_modules', 'xpr'));
  fs.mkdirSync(path.join(dir, '_expyre'));
  fs.writeFileSync(path.join(dir, 'ops.mjs'), 'export function add(a, b) { return a + b; }\n');
  fs.writeFileSync(path.join(dir, 'script.mjs'), SCRIPT);
});
afterAll(async () => { await removeProjectDir(dir); });

function runScript(which: string, debug = false) {
  const env: NodeJS.ProcessEnv = { ...process.env, EXPYRE_ROOT: path.join(dir, '_expyre'), HOME: dir, XPR_LOCALQ_DIR: path.join(dir, 'localq') };
  delete env['XPR_DEBUG'];
  if (debug) env['XPR_DEBUG'] = '1';
  const r = spawnSync(process.execPath, ['script.mjs', which], { cwd: dir, env, encoding: 'utf8' });
  return { code: r.status, stderr: r.stderr };
}

/** `script.mjs:<line>` of the line marked `@which`. */
function lineOf(which: string): string {
  const n = SCRIPT.split('\n').findIndex((l) => l.endsWith(`// @${which}`)) + 1;
  return `script.mjs:${n}:`;
}

const xprFrame = /\/(dist\/)?src\/\S+\.(js|ts):\d+/;

describe('an XprError uncaught at the top of a script', () => {
  it.each(CASES)('$which: message, hint and the script\'s own line; no frame of xpr', ({ which, message, hint }) => {
    const r = runScript(which);
    expect(r.code).toBe(1);
    const at = r.stderr.indexOf(typeof message === 'string' ? message : r.stderr.match(message)?.[0] ?? '\0');
    expect(at, r.stderr).toBeGreaterThanOrEqual(0);
    const shown = r.stderr.slice(at);
    // The hint right after the message, then the frames, starting at the user's call.
    expect(shown).toMatch(new RegExp(`\\n {2}${hint.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
    expect(shown.split('\n').find((l) => /^\s+at /.test(l))).toContain(lineOf(which));
    expect(r.stderr).not.toContain(path.join(PACKAGE_ROOT, 'dist'));
    expect(r.stderr).not.toContain(path.join(PACKAGE_ROOT, 'src'));
    expect(r.stderr).not.toMatch(xprFrame);
    // The fields the stack already says are not dumped after it.
    expect(r.stderr).not.toMatch(/^\s+(hint|issues|job):/m);
  });

  it.each(['create', 'configset'])('%s with XPR_DEBUG=1: xpr\'s own frames, and still the script\'s line', (which) => {
    const r = runScript(which, true);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(path.join(PACKAGE_ROOT, 'dist', 'src'));
    expect(r.stderr).toContain(lineOf(which));
  });

  it('a script that made nothing left nothing behind', () => {
    // Only the getResults case makes a job (and that is the point of it).
    expect(fs.readdirSync(path.join(dir, '_expyre')).filter((f) => f.startsWith('run_') && !f.startsWith('run_add_'))).toEqual([]);
    expect(fs.existsSync(path.join(dir, 'no_such_dir'))).toBe(false);
  });
});
