// Shared by the scheduler tests: fixture files, and running a scheduler's command line in a real bash
// against fake scheduler binaries (small shell scripts put first on PATH).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { NodeChoice } from '../../src/resources/types.js';
import type { RemoteState } from '../../src/schedulers/types.js';

const here = path.dirname(fileURLToPath(import.meta.url));
export const fixturesDir = path.join(here, '..', 'fixtures');
export const templatesDir = path.join(here, '..', '..', 'templates');

export function fixture(rel: string): string {
  return fs.readFileSync(path.join(fixturesDir, rel), 'utf8');
}

/** A temp dir with executable fake commands; `run` executes a command line with it first on PATH. */
export class FakeBin {
  readonly dir: string;

  constructor() {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xpr-fakebin-'));
  }

  /** Write a fake command `name` whose body is bash. */
  add(name: string, body: string): this {
    const file = path.join(this.dir, name);
    fs.writeFileSync(file, `#!/bin/bash\n${body}\n`, { mode: 0o755 });
    return this;
  }

  /** Write a data file next to the fakes (they find it as "$FAKEBIN/<name>"). */
  data(name: string, text: string): this {
    fs.writeFileSync(path.join(this.dir, name), text);
    return this;
  }

  /** Run `command` with `shell` (bash, or sh: dash on Debian, for the POSIX-only case). */
  run(command: string, shell: 'bash' | 'sh' = 'bash'): { code: number | null; stdout: string; stderr: string } {
    const cwd = this.dir;
    const r = spawnSync(shell, ['-c', command], {
      cwd,
      encoding: 'utf8',
      env: { ...process.env, PATH: `${this.dir}:${process.env.PATH ?? ''}`, FAKEBIN: this.dir },
    });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  }

  /** Arguments the fake `name` logged with `logArgs`, one array per call. */
  calls(name: string): string[][] {
    const file = path.join(this.dir, `${name}.calls`);
    if (!fs.existsSync(file)) return [];
    return fs.readFileSync(file, 'utf8').split('\x1e').filter((c) => c !== '')
      .map((c) => c.split('\0').slice(0, -1));
  }

  cleanup(): void {
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Bash snippet for a fake: append this call's arguments (NUL-separated) to `<name>.calls`. */
export function logArgs(name: string): string {
  return `{ printf '%s\\0' "$@"; printf '\\x1e'; } >> "$FAKEBIN/${name}.calls"`;
}

export const node: NodeChoice = {
  partitionKey: 'std',
  partition: 'standard',
  numNodes: 2,
  numCores: 64,
  numCoresPerNode: 32,
  maxTime: 90061, // 1 day, 1 h, 1 min, 1 s
};

/** Compact view of a state map for table comparisons: `status[/reason][:exit]`. */
export function brief(states: Map<string, RemoteState>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [id, s] of states) {
    out[id] = `${s.status}${s.reason ? `/${s.reason}` : ''}${s.exitCode === undefined ? '' : `:${s.exitCode}`}`;
  }
  return out;
}

/** Fill ExPyRe header placeholders the way the job script renderer does, for golden files. */
export function fillHeader(lines: string[], values: Record<string, string>): string[] {
  return lines.map((l) => l.replace(/\{(\w+)\}/g, (m, k: string) => values[k] ?? m));
}
