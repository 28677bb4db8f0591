// RemoteInfo fields and WFL_EXPYRE_INFO parsing, and the precedence of autopara options.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, XprError } from '../../src/errors.js';
import { checkOptions, localPoolSize, resolveOptions } from '../../src/autopara/options.js';
import { chooseRemoteInfo, parseExpyreInfo, RemoteInfo } from '../../src/autopara/remoteinfo.js';
import { itemsPerJob } from '../../src/autopara/remote.js';
import type { StackFrame } from '../../src/autopara/stack.js';

const base = { sys_name: 'cluster', resources: { num_cores: 4, max_time: '1h' } };

describe('RemoteInfo', () => {
  it('has wfl defaults', () => {
    const ri = new RemoteInfo(base);
    expect(ri.num_inputs_per_queued_job).toBe(-100);
    expect(ri.timeout).toBe(3600);
    expect(ri.check_interval).toBeUndefined();
    expect(ri.exact_fit).toBe(true);
    expect(ri.partial_node).toBeUndefined();
    expect([ri.ignore_failed_jobs, ri.resubmit_killed_jobs]).toEqual([false, false]);
    expect(ri.env_vars).toEqual({});
    expect(ri.resources.toSpec()).toMatchObject({ num_cores: 4, max_time: 3600 });
  });

  it('takes env_vars as wfl\'s NAME=value list or as an object, and times as strings', () => {
    const ri = new RemoteInfo({ ...base, env_vars: ['A=1', 'B=x=y'], timeout: '2h', check_interval: '10s' });
    expect(ri.env_vars).toEqual({ A: '1', B: 'x=y' });
    expect(ri.timeout).toBe(7200);
    expect(ri.check_interval).toBe(10);
    expect(new RemoteInfo({ ...base, env_vars: { C: '3' }, timeout: null }).timeout).toBe(Infinity);
  });

  it('reports every problem at once, naming the keys, the valid ones and renamed wfl keys', () => {
    let err: unknown;
    try {
      new RemoteInfo({ sys_name: 'c', resources: { max_time: 'soon' }, skip_failures: true, colour: 1, env_vars: ['NOEQ'] } as never);
    } catch (e) { err = e; }
    expect(err).toBeInstanceOf(ConfigError);
    const msg = (err as Error).message;
    expect(msg).toContain('skip_failures: unknown key "skip_failures": it is called "ignore_failed_jobs" now');
    expect(msg).toMatch(/colour: unknown key "colour" \(valid: sys_name, job_name, resources,/);
    expect(msg).toContain('env_vars[0]: expected "NAME=value"');
    expect(msg).toContain('resources');
  });

  it('is immutable', () => {
    const ri = new RemoteInfo({ ...base, pre_cmds: ['module load x'] });
    expect(() => { (ri as { sys_name: string }).sys_name = 'other'; }).toThrow();
    expect(() => { (ri.pre_cmds as string[]).push('y'); }).toThrow();
  });

  it('negative num_inputs_per_queued_job is a multiple of numInputsPerSubprocess', () => {
    expect(itemsPerJob(new RemoteInfo(base), 3)).toBe(300);
    expect(itemsPerJob(new RemoteInfo({ ...base, num_inputs_per_queued_job: 7 }), 3)).toBe(7);
  });
});

describe('WFL_EXPYRE_INFO', () => {
  const frame = (label: string): StackFrame => ({ file: label.split('::')[0]!, fn: label.split('::')[1]!, labels: [label] });
  const frames = [frame('/p/fit.js::<module>'), frame('/p/ops.js::calculate')];

  it('reads JSON text, a top-level sys_name applying to every call', () => {
    const info = parseExpyreInfo(JSON.stringify(base));
    expect(info.kind).toBe('all');
    expect(chooseRemoteInfo(info, frames, undefined)?.info.sys_name).toBe('cluster');
  });

  it('keeps the file order of keys, also keys that look like numbers', () => {
    const text = `{"ops.js::calculate": ${JSON.stringify({ ...base, job_name: 'first' })}, "2": ${JSON.stringify({ ...base, job_name: 'second' })}, "calculate": ${JSON.stringify({ ...base, job_name: 'third' })}}`;
    const info = parseExpyreInfo(text);
    expect(info.kind === 'keyed' && info.entries.map(([k]) => k)).toEqual(['ops.js::calculate', '2', 'calculate']);
    expect(chooseRemoteInfo(info, frames, undefined)?.info.job_name).toBe('first');
  });

  it('with a remote label only the key equal to it counts', () => {
    const info = parseExpyreInfo(JSON.stringify({ 'ops.js::calculate': base, mylabel: { ...base, job_name: 'L' } }));
    expect(chooseRemoteInfo(info, frames, 'mylabel')?.info.job_name).toBe('L');
    expect(chooseRemoteInfo(info, frames, 'calculate')).toBeUndefined();
  });

  it('reads a file by relative or absolute path, JSON or YAML', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xpr-ri-'));
    try {
      fs.writeFileSync(path.join(dir, 'ri.yaml'), 'sys_name: local\nresources:\n  num_cores: 1\n  max_time: 10m\n');
      expect(parseExpyreInfo('ri.yaml', dir).kind).toBe('all');
      expect(parseExpyreInfo(path.join(dir, 'ri.yaml')).kind).toBe('all');
      expect(() => parseExpyreInfo('missing.json', dir)).toThrow(/names the file .*missing\.json, which does not exist/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('checks every entry up front and names the key path and the file', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xpr-ri-'));
    try {
      const file = path.join(dir, 'remoteinfo.json');
      fs.writeFileSync(file, JSON.stringify({ a: base, 'fit.js::stageB': { sys_name: 'c', resources: { num_cores: 1, max_time: '1h' }, chunk: 3 } }));
      expect(() => parseExpyreInfo(file)).toThrow(/remoteinfo\.json: fit\.js::stageB\.chunk: unknown key "chunk"/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('autopara options', () => {
  it('call > wrapper defaults > built-in defaults', () => {
    const r = resolveOptions({ numInputsPerSubprocess: 5 }, { numInputsPerSubprocess: 10, skipFailed: false });
    expect(r).toMatchObject({ numInputsPerSubprocess: 5, skipFailed: false, waitForResults: true, numSubprocesses: undefined });
    expect(resolveOptions(undefined, {}).numInputsPerSubprocess).toBe(1);
    const ri = resolveOptions(undefined, { remoteInfo: base }).remoteInfo;
    expect(ri).toBeInstanceOf(RemoteInfo);
    expect(resolveOptions({ remoteInfo: { ...base, sys_name: 'other' } }, { remoteInfo: base }).remoteInfo?.sys_name).toBe('other');
  });

  it('rejects unknown keys, naming the valid ones and wfl\'s spellings', () => {
    expect(() => checkOptions({ chunksize: 3 }, 'calc(…, autopara)')).toThrow(/unknown option "chunksize"; valid: numInputsPerSubprocess, numSubprocesses, skipFailed, initializer, remoteInfo, remoteLabel, waitForResults/);
    expect(() => checkOptions({ num_inputs_per_python_subprocess: 3 }, 'x')).toThrow(/wfl's num_inputs_per_python_subprocess is numInputsPerSubprocess here/);
    expect(() => checkOptions({ name: 'x' }, 'x')).toThrow(XprError);
    expect(() => checkOptions({ name: 'x' }, 'x', true)).not.toThrow();
    expect(() => checkOptions({ numSubprocesses: -1 }, 'x')).toThrow(/numSubprocesses must be a whole number ≥ 0/);
  });

  it('pool size: option, else XPR_NUM_SUBPROCESSES, else WFL_NUM_PYTHON_SUBPROCESSES, else 0', () => {
    const r = resolveOptions(undefined, {});
    expect(localPoolSize(r, {})).toBe(0);
    expect(localPoolSize(r, { WFL_NUM_PYTHON_SUBPROCESSES: '3' })).toBe(3);
    expect(localPoolSize(r, { WFL_NUM_PYTHON_SUBPROCESSES: '3', XPR_NUM_SUBPROCESSES: '2' })).toBe(2);
    expect(localPoolSize(resolveOptions({ numSubprocesses: 1 }, {}), { WFL_NUM_PYTHON_SUBPROCESSES: '3' })).toBe(1);
    expect(() => localPoolSize(r, { WFL_NUM_PYTHON_SUBPROCESSES: 'many' })).toThrow(/WFL_NUM_PYTHON_SUBPROCESSES="many" is not a number/);
  });
});
