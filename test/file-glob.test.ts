// File globs against a real tree: sorted, literal names that look like patterns, dot files, symlinks.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { expandFileGlob } from '../src/util/file-glob.js';

let dir: string;

beforeEach(() => {
  // A dir name that is itself full of pattern characters: it must be taken literally.
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "xpr glob (1) {a,b} +$ '"));
  for (const d of ['sub/deep', '.hidden', 'real']) fs.mkdirSync(path.join(dir, d), { recursive: true });
  for (const f of ['b.xyz', 'a.xyz', 'B.xyz', '.tmp.xyz', 'sub/c.xyz', 'sub/deep/d.xyz', '.hidden/e.xyz', 'real/f.xyz',
    'data (1).xyz', '!bang.xyz', 'x{1,2}.xyz']) fs.writeFileSync(path.join(dir, f), '');
  fs.symlinkSync(path.join(dir, 'a.xyz'), path.join(dir, 'linked.xyz'));
  fs.symlinkSync(path.join(dir, 'real'), path.join(dir, 'linkdir'));
  fs.symlinkSync(dir, path.join(dir, 'real', 'loop'));
});

afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

const rel = (paths: string[]): string[] => paths.map((p) => path.relative(dir, p));

describe('expandFileGlob', () => {
  it('returns files sorted by code unit, skipping dot names unless asked', () => {
    expect(rel(expandFileGlob(path.join(dir, '*.xyz')))).toEqual(
      ['!bang.xyz', 'B.xyz', 'a.xyz', 'b.xyz', 'data (1).xyz', 'linked.xyz', 'x{1,2}.xyz']);
    expect(rel(expandFileGlob(path.join(dir, '.*')))).toEqual(['.tmp.xyz']);
    expect(expandFileGlob('*.xyz', { cwd: dir, dot: true })).toContain('.tmp.xyz');
    expect(expandFileGlob('.hidden/*', { cwd: dir })).toEqual(['.hidden/e.xyz']);
  });

  it('takes names literally but for *, ? and [..]', () => {
    expect(expandFileGlob('data (1)*', { cwd: dir })).toEqual(['data (1).xyz']);
    expect(expandFileGlob('!bang*', { cwd: dir })).toEqual(['!bang.xyz']);
    expect(expandFileGlob('x{1,2}*', { cwd: dir })).toEqual(['x{1,2}.xyz']);
    expect(expandFileGlob('[ab].xyz', { cwd: dir })).toEqual(['a.xyz', 'b.xyz']);
    expect(expandFileGlob('[!ab].xyz', { cwd: dir })).toEqual(['B.xyz']);
    expect(expandFileGlob('?.xyz', { cwd: dir })).toEqual(['B.xyz', 'a.xyz', 'b.xyz']);
  });

  it('goes any depth with ** but not into symlinked dirs, which * segments do enter', () => {
    expect(expandFileGlob('**/*.xyz', { cwd: dir }).filter((p) => p.includes('/'))).toEqual(
      ['real/f.xyz', 'sub/c.xyz', 'sub/deep/d.xyz']);
    expect(expandFileGlob('*/f.xyz', { cwd: dir })).toEqual(['linkdir/f.xyz', 'real/f.xyz']);
  });

  it('lists dirs too when asked, and nothing under a missing dir', () => {
    expect(expandFileGlob('*', { cwd: dir, dirs: true })).toEqual(expect.arrayContaining(['real', 'sub']));
    expect(expandFileGlob('*', { cwd: dir })).not.toContain('sub');
    expect(expandFileGlob('nope/*', { cwd: dir })).toEqual([]);
    expect(expandFileGlob('sub/c.xyz', { cwd: dir })).toEqual(['sub/c.xyz']);
  });
});
