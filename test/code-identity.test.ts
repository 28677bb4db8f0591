// The code identity of a call is the hash of its bundled module, and depends on the code only: a
// project copied or moved elsewhere keeps its hashes (its jobs re-attach), while an edit to the op
// or anything it imports changes them. Remote stacks still name the user's files where they now are.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RemoteError } from '../src/errors.js';
import { bundleModule, runnerBundle } from '../src/job/code.js';
import { Job } from '../src/job/job.js';
import { Project } from '../src/job/project.js';
import { PACKAGE_ROOT } from '../src/util/paths.js';
import { removeProjectDir } from './helpers/localq.js';

let base: string;
const savedLocalq = process.env.XPR_LOCALQ_DIR;

beforeAll(() => {
  base = fs.mkdtempSync(path.join(os.tmpdir(), 'xpr-code-id-'));
  // The local queue lives outside the projects, so moving a project does not move it.
  process.env.XPR_LOCALQ_DIR = path.join(base, 'localq');
});
afterAll(async () => {
  process.env.XPR_LOCALQ_DIR = savedLocalq;
  await removeProjectDir(base);
});

/** A project with an op module that imports a file of its own, a CommonJS package and xpr. */
function writeProject(dir: string): void {
  const files: Record<string, string> = {
    'package.json': '{ "type": "module" }\n',
    'src/ops.js': [
      "import { autoparallelize } from 'xpr';",
      "import pad from 'padder';",
      "import { twice } from './lib/twice.js';",
      'export function double(x) { return pad(twice(x)); }',
      "export function fails(x) { throw new RangeError(`bad x=${x}`); }",
      'export const doubleAll = autoparallelize(double);',
      '',
    ].join('\n'),
    'src/lib/twice.js': 'export const twice = (x) => 2 * x;\n',
    'node_modules/padder/package.json': '{ "name": "padder", "main": "index.js" }\n',
    'node_modules/padder/index.js': 'module.exports = function pad(x) { return String(x).padStart(4, "0"); };\n',
  };
  for (const [rel, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    fs.writeFileSync(path.join(dir, rel), text);
  }
  // So the op module can be imported here too (the bundle gets xpr's remote shim instead).
  fs.symlinkSync(PACKAGE_ROOT, path.join(dir, 'node_modules', 'xpr'));
}

const opsOf = (dir: string) => path.join(dir, 'src', 'ops.js');

describe('the code hash', () => {
  it('stays the same when the project is copied or moved, and changes when the code does', async () => {
    const first = path.join(base, 'a', 'proj');
    writeProject(first);
    const { hash } = await bundleModule(opsOf(first));

    const copy = path.join(base, 'elsewhere', 'deeper', 'copy-of-proj');
    fs.cpSync(first, copy, { recursive: true, verbatimSymlinks: true });
    expect((await bundleModule(opsOf(copy))).hash).toBe(hash);

    const moved = path.join(base, 'moved');
    fs.renameSync(first, moved);
    expect((await bundleModule(opsOf(moved))).hash).toBe(hash);

    const edited = path.join(base, 'edited');
    fs.cpSync(moved, edited, { recursive: true, verbatimSymlinks: true });
    // An edit to a file the op imports (not the op's own file) and that the op uses: unused
    // exports are dropped from the bundle and so, rightly, do not count.
    fs.writeFileSync(path.join(edited, 'src', 'lib', 'twice.js'), 'export const twice = (x) => x + x;\n');
    expect((await bundleModule(opsOf(edited))).hash).not.toBe(hash);
  });

  it('is the hash of the bundled code alone: no absolute path in it, the source map kept apart', async () => {
    const dir = path.join(base, 'plain');
    writeProject(dir);
    const bundle = await bundleModule(opsOf(dir));
    for (const code of [bundle.code, (await runnerBundle()).code]) {
      expect(code).not.toContain(base);
      expect(code).not.toContain(PACKAGE_ROOT);
      expect(code).not.toContain('sourceMappingURL');
    }
    // The map names the files where they are now.
    expect(JSON.parse(bundle.map).sources).toContain(pathToFileURL(path.join(dir, 'src', 'lib', 'twice.js')).href);
  });
});

describe('a moved project', () => {
  it('re-attaches its jobs, and a new job\'s remote stack names the op where the project now is', async () => {
    const before = path.join(base, 'run', 'proj');
    const after = path.join(base, 'run-moved', 'renamed');
    writeProject(before);
    const open = (dir: string) => {
      fs.mkdirSync(path.join(dir, '_expyre'), { recursive: true });
      return Project.open({ cwd: dir, env: { ...process.env, EXPYRE_ROOT: path.join(dir, '_expyre'), HOME: base }, home: base });
    };
    const load = async (dir: string) => (await import(pathToFileURL(opsOf(dir)).href)) as Record<string, (x: number) => unknown>;
    const resources = { resources: { num_cores: 1, max_time: '5m' } };

    let project = open(before);
    let ops = await load(before);
    const ok = await Job.create({ name: 'double', fn: ops.double!, args: [21], project });
    const bad = await Job.create({ name: 'fails', fn: ops.fails!, args: [3], project });
    await Job.startMany([ok, bad], resources);
    expect((await ok.getResults({ timeout: 60 })).result).toBe('0042');
    const err1 = await bad.getResults({ timeout: 60 }).catch((e: unknown) => e);
    expect((err1 as RemoteError).remoteStack).toContain(`(${opsOf(before)}:`);
    await project.close();

    fs.mkdirSync(path.dirname(after), { recursive: true });
    fs.renameSync(before, after);
    project = open(after);
    ops = await load(after);
    const again = await Job.create({ name: 'double', fn: ops.double!, args: [21], project });
    expect(again.reattached).toBe(true);
    // The failed call runs anew, with the same hash: only the place of the project changed.
    const rerun = await Job.create({ name: 'fails', fn: ops.fails!, args: [3], project });
    expect(rerun.missReason).toMatch(/^the same call ran as .*, which is failed$/);
    await rerun.start(resources);
    const err2 = await rerun.getResults({ timeout: 60 }).catch((e: unknown) => e);
    expect(err2).toBeInstanceOf(RemoteError);
    expect((err2 as RemoteError).remoteStack).toMatch(/RangeError: bad x=3\n\s+at fails \(/);
    expect((err2 as RemoteError).remoteStack).toContain(`(${opsOf(after)}:`);
    expect((err2 as RemoteError).remoteStack).not.toContain(before);
    await project.close();
  });
});
