import { describe, expect, it } from 'vitest';
import { XprError } from '../src/errors.js';
import { formatMemory, formatTime, parseMemory, parseTime } from '../src/resources/units.js';

describe('parseTime', () => {
  it.each<[number | string, number]>([
    [0, 0],
    [3600, 3600],
    ['5', 5],
    [' 5 ', 5],
    ['90s', 90],
    ['30m', 1800],
    ['2h', 7200],
    ['1d', 86400],
    ['2H', 7200],
    ['1 h', 3600],
    ['  45 M ', 2700],
    ['1.5h', 5400],
    ['1.h', 3600],
    ['4.35h', 15660], // float arithmetic would give 15659
    ['0.5s', 0], // truncated, as ExPyRe's int()
    ['10:10', 610],
    ['00:30', 30],
    ['90:00', 5400],
    ['2:10:10', 7810],
    ['49:00:10', 176410],
    ['3-2:10:10', 3 * 86400 + 7810],
    ['1-00:00:00', 86400],
    ['2-1:10:05', 2 * 86400 + 4205],
  ])('%j → %i s', (input, seconds) => {
    expect(parseTime(input)).toBe(seconds);
  });

  it.each<[number | string, RegExp]>([
    [-1, /not a non-negative integer/],
    [1.5, /not a non-negative integer/],
    [Number.NaN, /not a non-negative integer/],
    [Number.POSITIVE_INFINITY, /not a non-negative integer/],
    ['', /empty/],
    ['   ', /empty/],
    ['-5', /negative/],
    ['-1h', /negative/],
    ['1x', /Invalid time "1x"/],
    ['h', /Invalid time/],
    ['.5h', /Invalid time/],
    ['1e3s', /Invalid time/],
    ['1:2:3:4', /Invalid time/],
    ['1:60', /below 60/],
    ['1:00:60', /below 60/],
    ['1-5', /ambiguous/],
    ['1-12:00', /ambiguous/],
    ['1hour', /Invalid time/],
    ['1h30m', /Invalid time/],
    ['99999999999999999999', /too large/],
  ])('rejects %j', (input, message) => {
    expect(() => parseTime(input)).toThrow(XprError);
    expect(() => parseTime(input)).toThrow(message);
  });

  it('names the valid formats when it rejects', () => {
    expect(() => parseTime('soon')).toThrow(/integer seconds.*<n>\[smhd\].*\[D-\]HH:MM:SS/);
  });

  it('rejects non-string, non-number input from untyped callers', () => {
    expect(() => parseTime(null as unknown as string)).toThrow(/Invalid time null/);
  });
});

describe('parseMemory', () => {
  it.each<[number | string, number]>([
    [0, 0],
    [5, 5],
    ['5kb', 5],
    ['5 kB', 5],
    ['5k', 5],
    ['5K', 5],
    ['5MB', 5 * 1024],
    ['5m', 5 * 1024],
    ['4gb', 4 * 1024 ** 2],
    ['4G', 4 * 1024 ** 2],
    ['5TB', 5 * 1024 ** 3],
    [' 512 mb ', 512 * 1024],
    ['1.5gb', 1.5 * 1024 ** 2],
    ['0.3mb', 307], // truncated
  ])('%j → %i kB', (input, kB) => {
    expect(parseMemory(input)).toBe(kB);
  });

  it.each<[number | string, RegExp]>([
    [-1, /not a non-negative integer/],
    [2.5, /not a non-negative integer/],
    [Number.NaN, /not a non-negative integer/],
    ['', /empty/],
    ['-4gb', /negative/],
    ['1000', /no unit/],
    ['4.5', /no unit/],
    ['4xb', /Invalid memory "4xb"/],
    ['4gib', /Invalid memory/],
    ['4bytes', /Invalid memory/],
    ['gb', /Invalid memory/],
    ['4 g b', /Invalid memory/],
  ])('rejects %j', (input, message) => {
    expect(() => parseMemory(input)).toThrow(XprError);
    expect(() => parseMemory(input)).toThrow(message);
  });

  it('names the valid formats when it rejects', () => {
    expect(() => parseMemory('lots')).toThrow(/integer kB.*<n>\[kmgt\]b/);
  });
});

describe('formatTime', () => {
  it.each<[number, 'slurm' | 'hms', string]>([
    [0, 'hms', '00:00:00'],
    [5, 'hms', '00:00:05'],
    [1801, 'hms', '00:30:01'],
    [3700, 'hms', '01:01:40'],
    [2 * 86400 + 3600 + 10, 'hms', '49:00:10'],
    [3700, 'slurm', '01:01:40'],
    [86399, 'slurm', '23:59:59'],
    [86400, 'slurm', '1-00:00:00'],
    [2 * 86400 + 3600 + 10, 'slurm', '2-01:00:10'],
  ])('%i s as %s → %s', (seconds, style, text) => {
    expect(formatTime(seconds, style)).toBe(text);
  });

  it('round-trips through parseTime', () => {
    for (const s of [0, 59, 3600, 86399, 86400, 200000]) {
      expect(parseTime(formatTime(s, 'slurm'))).toBe(s);
      expect(parseTime(formatTime(s, 'hms'))).toBe(s);
    }
  });

  it('rejects negative and fractional seconds', () => {
    expect(() => formatTime(-1)).toThrow(RangeError);
    expect(() => formatTime(1.5)).toThrow(RangeError);
  });
});

describe('formatMemory', () => {
  it.each<[number, Parameters<typeof formatMemory>[1], string]>([
    [4 * 1024 ** 2, {}, '4G'],
    [4 * 1024 ** 2, { style: 'pbs' }, '4gb'],
    [4 * 1024 ** 2, { style: 'sge' }, '4G'],
    [1536, {}, '1536K'],
    [1024 ** 3, { style: 'pbs' }, '1tb'],
    [0, {}, '0K'],
    [4 * 1024 ** 2, { unit: 'm' }, '4096M'],
    [1025, { unit: 'm' }, '2M'], // rounded up: never ask for less than needed
    [1536 * 1024, { unit: 'g', style: 'pbs' }, '2gb'],
  ])('%i kB with %j → %s', (kB, options, text) => {
    expect(formatMemory(kB, options)).toBe(text);
  });

  it('round-trips through parseMemory when exact', () => {
    for (const kB of [1, 1536, 4 * 1024 ** 2, 3 * 1024 ** 3]) {
      expect(parseMemory(formatMemory(kB))).toBe(kB);
      expect(parseMemory(formatMemory(kB, { style: 'pbs' }))).toBe(kB);
    }
  });

  it('rejects negative memory', () => {
    expect(() => formatMemory(-1)).toThrow(RangeError);
  });
});
