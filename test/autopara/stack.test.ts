// WFL_EXPYRE_INFO key matching against real call stacks: the fixture script fit.js calls
// ops.js::calculate at top level, in stageA() and in stageB() through helper(), each awaited, and is
// run as a real `node` process with the variable set. A call that goes remote runs on the built-in
// local system, so "remote" below means it really ran as a job.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { build } from 'esbuild';
import { afterAll, describe, expect, it } from 'vitest';
import { keyMatches, type StackFrame } from '../../src/autopara/stack.js';
import { FIXTURES, jsonLines, remoteInfo, runNode, sandbox, type Sandbox } from './helpers.js';

const boxes: Sandbox[] = [];
afterAll(async () => { for (const b of boxes) await b.cleanup(); });

async function whereEachCallRan(info: unknown, extraEnv: Record<string, string> = {}, script = 'fit.js') {
  const box = sandbox();
  boxes.push(box);
  const env = { ...box.env, WFL_EXPYRE_INFO: typeof info === 'string' ? info : JSON.stringify(info), ...extraEnv };
  const r = await runNode([...(script.endsWith('.js') && script !== 'fit.js' ? ['--enable-source-maps'] : []), path.join(FIXTURES, script)], { cwd: box.dir, env });
  expect(r.code, r.stderr).toBe(0);
  const rows = jsonLines(r.stdout) as { tag: string; where: string[]; y: number[] }[];
  // Same results wherever it ran.
  for (const row of rows) expect(row.y).toEqual([2, 4]);
  const where = Object.fromEntries(rows.map((row) => [row.tag, row.where[0]]));
  return { top: where.top, stageA: where.stageA, stageB: where.stageB, stderr: r.stderr };
}

const RI = remoteInfo();
const A = remoteInfo({ env_vars: ['XPR_TEST_WHICH=A'] });
const B = remoteInfo({ env_vars: { XPR_TEST_WHICH: 'B' } });

describe.concurrent('the stack-matching table', () => {
  it('ops.js::calculate → remote, remote, remote', async () => {
    const w = await whereEachCallRan({ 'ops.js::calculate': RI });
    expect([w.top, w.stageA, w.stageB]).toEqual(['remote', 'remote', 'remote']);
    expect(w.stderr).toContain('key "ops.js::calculate" matched fit.js::<module> > ops.js::calculate');
  });

  it('fit.js::stageA,ops.js::calculate → local, remote, local', async () => {
    const w = await whereEachCallRan({ 'fit.js::stageA,ops.js::calculate': RI });
    expect([w.top, w.stageA, w.stageB]).toEqual(['local', 'remote', 'local']);
    expect(w.stderr).toContain('no key matched fit.js::<module> > fit.js::stageB > fit.js::helper > ops.js::calculate');
  });

  it('fit.js::<module>,ops.js::calculate → remote, local, local', async () => {
    const w = await whereEachCallRan({ 'fit.js::<module>,ops.js::calculate': RI });
    expect([w.top, w.stageA, w.stageB]).toEqual(['remote', 'local', 'local']);
  });

  it('fit.js::stageA (not the innermost frame) → local, local, local', async () => {
    const w = await whereEachCallRan({ 'fit.js::stageA': RI });
    expect([w.top, w.stageA, w.stageB]).toEqual(['local', 'local', 'local']);
  });

  it('stageB,helper,calculate → local, local, remote', async () => {
    const w = await whereEachCallRan({ 'stageB,helper,calculate': RI });
    expect([w.top, w.stageA, w.stageB]).toEqual(['local', 'local', 'remote']);
  });

  it('keys are tried in file order: {helper-chain: A, ops.js::calculate: B} → B, B, A', async () => {
    const w = await whereEachCallRan({ 'fit.js::helper,ops.js::calculate': A, 'ops.js::calculate': B });
    expect([w.top, w.stageA, w.stageB]).toEqual(['B', 'B', 'A']);
  });

  it('remote_label "mylabel" with key mylabel → remote, remote, remote', async () => {
    const w = await whereEachCallRan({ 'fit.js::nothing_matches_this': A, mylabel: RI }, { XPR_TEST_REMOTE_LABEL: 'mylabel' });
    expect([w.top, w.stageA, w.stageB]).toEqual(['remote', 'remote', 'remote']);
    expect(w.stderr).toContain('key "mylabel" matched remote_label "mylabel"');
  });

  it('a top-level sys_name sends every call → remote, remote, remote', async () => {
    const w = await whereEachCallRan(RI);
    expect([w.top, w.stageA, w.stageB]).toEqual(['remote', 'remote', 'remote']);
    expect(w.stderr).toContain('top-level sys_name matched');
  });

  it('reads a YAML file named by WFL_EXPYRE_INFO, keys in file order', async () => {
    const box = sandbox();
    boxes.push(box);
    const file = path.join(box.dir, 'remoteinfo.yaml');
    fs.writeFileSync(file, [
      '"fit.js::helper,ops.js::calculate":',
      '  sys_name: local',
      '  resources: { num_cores: 1, max_time: 5m }',
      '  env_vars: [XPR_TEST_WHICH=A]',
      '"ops.js::calculate":',
      '  sys_name: local',
      '  resources: { num_cores: 1, max_time: 5m }',
      '  env_vars: [XPR_TEST_WHICH=B]',
      '',
    ].join('\n'));
    const w = await whereEachCallRan(file);
    expect([w.top, w.stageA, w.stageB]).toEqual(['B', 'B', 'A']);
  });

  it('matches file:// URLs and source-mapped .ts names', async () => {
    // fit-mapped.ts compiled with a source map; its frames are in fit-mapped.js, mapped back to .ts.
    const dir = fs.mkdtempSync(path.join(FIXTURES, 'tmp-'));
    try {
      const src = fs.readFileSync(path.join(FIXTURES, 'fit.js'), 'utf8').replace("'./ops.js'", "'../ops.js'");
      fs.writeFileSync(path.join(dir, 'fit-mapped.ts'), `// typed copy of fit.js\nconst pad: number = 0;\n${src}`);
      await build({
        entryPoints: [path.join(dir, 'fit-mapped.ts')], outfile: path.join(dir, 'fit-mapped.js'), format: 'esm',
        platform: 'node', sourcemap: true, bundle: false, logLevel: 'silent',
      });
      const script = path.relative(FIXTURES, path.join(dir, 'fit-mapped.js'));
      const mapped = await whereEachCallRan({ 'fit-mapped\\.ts::stageA,ops.js::calculate': RI }, {}, script);
      expect([mapped.top, mapped.stageA, mapped.stageB]).toEqual(['local', 'remote', 'local']);
      const url = await whereEachCallRan({ '^file:///.*/fit-mapped\\.js::<module>,^file:///.*ops\\.js::calculate': RI }, {}, script);
      expect([url.top, url.stageA, url.stageB]).toEqual(['remote', 'local', 'local']);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('keyMatches', () => {
  const f = (file: string, fn: string): StackFrame => ({ file, fn, labels: [`${file}::${fn}`, `file://${file}::${fn}`] });
  const frames = [f('/p/fit.js', '<module>'), f('/p/fit.js', 'stageB'), f('/p/fit.js', 'helper'), f('/p/ops.js', 'calculate')];

  it('anchors each piece at the end and lines pieces up with the innermost frames', () => {
    expect(keyMatches('ops.js::calculate', frames)).toBe(true);
    expect(keyMatches('calc', frames)).toBe(false);
    expect(keyMatches('helper, calculate', frames)).toBe(true);
    expect(keyMatches('stageB,calculate', frames)).toBe(false);
    expect(keyMatches('fit.js::<module>,stageB,helper,ops.js::calculate', frames)).toBe(true);
  });

  it('does not match a key with more pieces than frames (wfl would compare only the overlap)', () => {
    expect(keyMatches('x,fit.js::<module>,stageB,helper,calculate', frames)).toBe(false);
  });

  it('reports a bad regular expression with its key', () => {
    expect(() => keyMatches('fit.js::(stageA', frames)).toThrow(/WFL_EXPYRE_INFO key "fit.js::\(stageA".*not a valid regular expression/);
  });
});

describe('fixture sanity', () => {
  it('runs locally with no WFL_EXPYRE_INFO', () => {
    const box = sandbox();
    boxes.push(box);
    const out = execFileSync(process.execPath, [path.join(FIXTURES, 'fit.js')], { cwd: box.dir, env: box.env, encoding: 'utf8' });
    expect(jsonLines(out).map((r) => (r as { where: string[] }).where[0])).toEqual(['local', 'local', 'local']);
  });
});
