// The executor's settings: flags over XPR_EXECUTOR_* over BEFLOW_* over defaults, the per-stage
// lists, and errors that name the flag or variable. Pure: no Redis, no process.
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { XprError } from '../../src/errors.js';
import {
  ALL_STAGES, BEFLOW_SETTINGS, clientEndpoint, DEFAULTS, forStage, parseCores, parseMaxMem, parseWorkers, redactUrl,
  resolveSettings,
} from '../../src/executor/settings.js';

const cwd = '/work/project';

function errorOf(f: () => unknown): XprError {
  try {
    f();
  } catch (err) {
    expect(err).toBeInstanceOf(XprError);
    return err as XprError;
  }
  throw new Error('expected an error');
}

describe('per-stage lists', () => {
  it('reads stage=value pairs, and a bare value as every stage\'s', () => {
    expect(parseWorkers('fragmenter=1,qc-compute=2, optimizer=0')).toEqual({ fragmenter: 1, 'qc-compute': 2, optimizer: 0 });
    expect(parseCores('qc-compute=8,fragmenter=auto')).toEqual({ 'qc-compute': 8, fragmenter: 'auto' });
    expect(parseCores('4')).toEqual({ [ALL_STAGES]: 4 });
    expect(parseMaxMem('qc-compute=2.5gb,fit=512mb')).toEqual({ 'qc-compute': 2.5 * 1024 * 1024, fit: 512 * 1024 });
  });

  it('names the flag, the stage and a valid example in each error', () => {
    const w = errorOf(() => parseWorkers('a=1,b=two'));
    expect(w.message).toContain('--workers');
    expect(w.message).toContain('stage b');
    expect(w.hint).toContain('fragmenter=1,qc-compute=2');
    expect(errorOf(() => parseCores('a=0')).message).toMatch(/--cores: stage a "0" is not a number of cores/);
    expect(errorOf(() => parseMaxMem('a=2.5', 'XPR_EXECUTOR_MAX_MEM')).message).toMatch(/XPR_EXECUTOR_MAX_MEM: stage a: Invalid memory "2\.5" \(no unit/);
    expect(errorOf(() => parseWorkers('a=1,a=2')).message).toContain('stage "a" is given twice');
    expect(errorOf(() => parseWorkers('=1')).message).toContain('does not start with a stage name');
    expect(errorOf(() => parseWorkers(' , ')).message).toContain('--workers is empty');
  });
});

describe('resolveSettings', () => {
  it('has defaults, with the directory under the working dir', () => {
    const { settings, warnings } = resolveSettings({}, {}, cwd);
    expect(settings).toEqual({
      directory: path.join(cwd, DEFAULTS.directory), address: '127.0.0.1', port: 8000,
      workers: {}, cores: {}, maxMem: {}, keepTempFiles: false,
    });
    expect(warnings).toEqual([]);
  });

  it('takes flags over XPR_EXECUTOR_* variables, merging per-stage values stage by stage', () => {
    const env = {
      XPR_EXECUTOR_PORT: '9000', XPR_EXECUTOR_TOKEN: 'from-env', XPR_EXECUTOR_DIRECTORY: 'envdir',
      XPR_EXECUTOR_WORKERS: 'a=1,b=1', XPR_EXECUTOR_CORES: 'a=2', XPR_EXECUTOR_MAX_MEM: 'a=1gb',
      XPR_EXECUTOR_KEEP_TEMP_FILES: 'yes', XPR_EXECUTOR_REDIS_URL: 'redis://:pw@h:1',
    };
    const fromEnv = resolveSettings({}, env, cwd).settings;
    expect(fromEnv).toMatchObject({
      directory: path.join(cwd, 'envdir'), port: 9000, token: 'from-env', workers: { a: 1, b: 1 }, cores: { a: 2 },
      maxMem: { a: 1024 * 1024 }, keepTempFiles: true, redis: 'redis://:pw@h:1',
    });
    const flags = resolveSettings({ port: '9100', token: 'flag', workers: 'b=3', cores: 'b=auto', maxMem: 'b=2gb', keepTempFiles: false }, env, cwd).settings;
    expect(flags).toMatchObject({
      port: 9100, token: 'flag', workers: { a: 1, b: 3 }, cores: { a: 2, b: 'auto' },
      maxMem: { a: 1024 * 1024, b: 2 * 1024 * 1024 }, keepTempFiles: false,
    });
  });

  it('names the variable a bad value came from', () => {
    expect(errorOf(() => resolveSettings({}, { XPR_EXECUTOR_PORT: 'eighty' }, cwd)).message).toContain('XPR_EXECUTOR_PORT');
    expect(errorOf(() => resolveSettings({ port: 70000 }, {}, cwd)).message).toContain('--port');
    expect(errorOf(() => resolveSettings({}, { XPR_EXECUTOR_WORKERS: 'a=x' }, cwd)).message).toContain('XPR_EXECUTOR_WORKERS');
    expect(errorOf(() => resolveSettings({}, { XPR_EXECUTOR_KEEP_TEMP_FILES: 'maybe' }, cwd)).message).toContain('XPR_EXECUTOR_KEEP_TEMP_FILES');
    expect(errorOf(() => resolveSettings({ redis: 'http://h:1' }, {}, cwd)).message).toContain('--redis');
    expect(errorOf(() => resolveSettings({ workers: { a: -1 } }, {}, cwd)).message).toContain('workers: stage a');
  });

  it('honours BespokeFit\'s BEFLOW_* variables when the XPR_EXECUTOR_* one is unset', () => {
    const env = {
      BEFLOW_GATEWAY_ADDRESS: 'http://0.0.0.0', BEFLOW_GATEWAY_PORT: '8123', BEFLOW_API_TOKEN: 'bf-token',
      BEFLOW_REDIS_ADDRESS: 'redis.host', BEFLOW_REDIS_PASSWORD: 'p@ss', BEFLOW_QC_COMPUTE_WORKER_N_CORES: '4',
      BEFLOW_QC_COMPUTE_WORKER_MAX_MEM: '2', BEFLOW_FRAGMENTER_WORKER_N_CORES: 'auto', BEFLOW_KEEP_TMP_FILES: 'true',
    };
    const { settings } = resolveSettings({}, env, cwd);
    expect(settings).toMatchObject({
      address: '0.0.0.0', port: 8123, token: 'bf-token', redis: 'redis://:p%40ss@redis.host:6363/0',
      cores: { 'qc-compute': 4, fragmenter: 'auto' },
      // BespokeFit's max-mem is GB per core: 2 GB × 4 cores for the whole worker.
      maxMem: { 'qc-compute': 8 * 1024 * 1024 }, keepTempFiles: true,
    });
    const xpr = resolveSettings({}, { ...env, XPR_EXECUTOR_PORT: '8200', XPR_EXECUTOR_TOKEN: 'mine', XPR_EXECUTOR_CORES: 'qc-compute=2' }, cwd);
    expect(xpr.settings).toMatchObject({ port: 8200, token: 'mine', cores: { 'qc-compute': 2 }, maxMem: { 'qc-compute': 4 * 1024 * 1024 } });
  });

  it('warns instead of guessing a BEFLOW_* memory per core for "auto" cores', () => {
    const { settings, warnings } = resolveSettings({}, { BEFLOW_OPTIMIZER_WORKER_N_CORES: 'auto', BEFLOW_OPTIMIZER_WORKER_MAX_MEM: '3' }, cwd);
    expect(settings.maxMem).toEqual({});
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain('BEFLOW_OPTIMIZER_WORKER_MAX_MEM');
  });

  it('never makes up a Redis password', () => {
    expect(resolveSettings({}, { BEFLOW_REDIS_PORT: '7000' }, cwd).settings.redis).toBe('redis://localhost:7000/0');
  });
});

describe('the rest', () => {
  it('finds a stage\'s value, the all-stages one, or the fallback', () => {
    expect(forStage({ a: 2, [ALL_STAGES]: 4 }, 'a', 1)).toBe(2);
    expect(forStage({ a: 2, [ALL_STAGES]: 4 }, 'b', 1)).toBe(4);
    expect(forStage({ a: 2 }, 'b', 1)).toBe(1);
  });

  it('finds the executor for clients from XPR_EXECUTOR_URL/TOKEN, else BEFLOW_GATEWAY_*', () => {
    expect(clientEndpoint({ XPR_EXECUTOR_URL: 'http://h:1', XPR_EXECUTOR_TOKEN: 't' })).toMatchObject({ url: 'http://h:1', token: 't' });
    expect(clientEndpoint({ BEFLOW_GATEWAY_ADDRESS: 'https://bf.example.org', BEFLOW_GATEWAY_PORT: '443', BEFLOW_API_TOKEN: 'x' }))
      .toMatchObject({ url: 'https://bf.example.org:443', token: 'x', urlSource: 'BEFLOW_GATEWAY_ADDRESS', tokenSource: 'BEFLOW_API_TOKEN' });
    expect(clientEndpoint({})).toEqual({ urlSource: 'XPR_EXECUTOR_URL', tokenSource: 'XPR_EXECUTOR_TOKEN' });
  });

  it('hides passwords in URLs it shows', () => {
    expect(redactUrl('redis://:secret@127.0.0.1:6379')).toBe('redis://:***@127.0.0.1:6379');
  });

  it('maps every BEFLOW_* setting it lists, or says why not', () => {
    for (const row of BEFLOW_SETTINGS) expect(row.note.length).toBeGreaterThan(0);
    expect(BEFLOW_SETTINGS.map((r) => r.beflow)).toEqual(expect.arrayContaining([
      'BEFLOW_GATEWAY_ADDRESS', 'BEFLOW_GATEWAY_PORT', 'BEFLOW_API_TOKEN', 'BEFLOW_REDIS_PASSWORD',
      'BEFLOW_QC_COMPUTE_WORKER_N_CORES', 'BEFLOW_QC_COMPUTE_WORKER_MAX_MEM', 'BEFLOW_KEEP_TMP_FILES',
    ]));
  });
});
