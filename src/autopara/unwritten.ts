// Results of a local run (in this process or a pool) whose outputs could not be written: a disk that
// filled, permissions changed mid-run. The work is not thrown away: from the first failed write,
// every result is saved under the project's stage dir, `unwritten/<op>-<time>-<pid>.jsonl`, and the
// rerun of the same call writes them instead of running the op again, then deletes the file. "The
// same call" is the restart hash a job would have (the op's code, all the items, the kwargs), so
// results are never used for other inputs or after the op's code changed.
//
// The file is JSON Lines: a header line, then one line `{"i": index, "r": result}` per item, the
// result encoded as for jobs. Lines are appended as results come, so a run killed while saving still
// leaves every complete line usable.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { discoverProject } from '../config/discover.js';
import { describeWriteFailure, type OutputWriteError } from '../configset/outputspec.js';
import { currentProject } from '../job/project.js';
import { decode, encode, type Json } from '../util/codec.js';

const FORMAT = 'xpr-unwritten-results';

interface Header {
  format: typeof FORMAT;
  version: 1;
  name: string;
  /** Restart hash of the whole call. */
  key: string;
  items: number;
  outputs: string[];
  error: string;
}

/** `unwritten/` in the project's stage dir (the dir of jobs.db), found as jobs find it. */
export function unwrittenDir(): string {
  let root: string;
  try {
    root = currentProject().stageRoot;
  } catch {
    // A config.json with errors must not cost the results: its dir is still the project's.
    root = discoverProject().rootDir;
  }
  return path.join(root, 'unwritten');
}

function fileStem(name: string): string {
  return name.replace(/[^A-Za-z0-9_.-]+/g, '_').slice(0, 100) || 'op';
}

function stamp(date: Date): string {
  return date.toISOString().slice(0, 19).replace(/[-:]/g, '');
}

/** Saved files of op `name`, oldest first; no hashing or reading, so a run without any pays nothing. */
export function savedFilesFor(name: string): string[] {
  let dir: string;
  let names: string[];
  try {
    dir = unwrittenDir();
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  const stem = `${fileStem(name)}-`;
  return names.filter((n) => n.startsWith(stem) && n.endsWith('.jsonl')).sort().map((n) => path.join(dir, n));
}

export interface Saved {
  /** The files the results came from (deleted once the outputs are written). */
  files: string[];
  /** Result by item index. */
  results: Map<number, unknown>;
}

/** Results saved for this very call (same key and number of items); later files win. */
export function loadSaved(files: readonly string[], key: string, items: number): Saved | undefined {
  const out: Saved = { files: [], results: new Map() };
  for (const file of files) {
    let lines: string[];
    try {
      lines = fs.readFileSync(file, 'utf8').split('\n');
    } catch {
      continue;
    }
    const header = parseLine(lines[0] ?? '') as Partial<Header> | undefined;
    if (header?.format !== FORMAT || header.key !== key || header.items !== items) continue;
    out.files.push(file);
    for (const line of lines.slice(1)) {
      // A line cut short by a kill is skipped: its item runs again.
      const entry = parseLine(line) as { i?: unknown; r?: Json } | undefined;
      if (entry && Number.isInteger(entry.i) && (entry.i as number) < items && 'r' in entry) {
        out.results.set(entry.i as number, decode(entry.r));
      }
    }
  }
  return out.files.length > 0 ? out : undefined;
}

function parseLine(line: string): unknown {
  try {
    return JSON.parse(line) as unknown;
  } catch {
    return undefined;
  }
}

/** Deletes saved files whose results are written (or saved again); what cannot be deleted stays. */
export function dropSaved(files: readonly string[]): void {
  for (const f of files) fs.rmSync(f, { force: true });
}

/** A saved-results file being written. */
class SaveFile {
  private constructor(readonly path: string, private readonly fd: number) {}

  static create(dir: string, header: Header): SaveFile {
    fs.mkdirSync(dir, { recursive: true });
    const file = path.join(dir, `${fileStem(header.name)}-${stamp(new Date())}-${process.pid}.jsonl`);
    const fd = fs.openSync(file, 'wx');
    const saved = new SaveFile(file, fd);
    saved.write(header as unknown as Json);
    return saved;
  }

  append(index: number, result: unknown): void {
    this.write({ i: index, r: encode(result, `the result for item ${index}`) });
  }

  close(): void {
    try {
      fs.fsyncSync(this.fd);
    } finally {
      fs.closeSync(this.fd);
    }
  }

  private write(data: Json): void {
    fs.writeSync(this.fd, `${JSON.stringify(data)}\n`);
  }
}

export interface KeptCall {
  name: string;
  items: number;
  outputs: string[];
  /** The call's restart hash; computed only once a write has failed (it may bundle the op's code). */
  key: () => Promise<string>;
  /** Saved files this run's results came from: superseded once the results are saved again. */
  previous: readonly string[];
}

/**
 * Holds a local run's results until its outputs are written. After a failed write (`writeFailed`),
 * every result so far and each later one goes to a saved-results file; `finish()` then gives the
 * write error, saying where the results are.
 */
export class ResultKeeper {
  private readonly results = new Map<number, unknown>();
  private writeError: OutputWriteError | undefined;
  private dir: string | undefined;
  private file: SaveFile | undefined;
  private opening: Promise<void> | undefined;
  private saveError: unknown;

  constructor(private readonly call: KeptCall) {}

  /** True once a write of the outputs has failed. */
  get failed(): boolean {
    return this.writeError !== undefined;
  }

  /** A result came. Throws when the results can no longer be kept, so no more work is done for nothing. */
  record(index: number, result: unknown): void {
    if (this.saveError !== undefined) throw this.unsavedError();
    // Outputs in memory cannot fail to be written: nothing to hold.
    if (this.call.outputs.length === 0) return;
    this.results.set(index, result);
    if (this.file) this.append(index, result);
  }

  /** A write failed: from now on the results are saved. */
  writeFailed(err: OutputWriteError): void {
    if (this.writeError) return;
    this.writeError = err;
    this.opening = this.open();
  }

  /** After a failed write: the error to report, saying where the results are (or that they could not be kept). */
  async finish(): Promise<OutputWriteError> {
    const err = this.writeError;
    if (!err) throw new Error('ResultKeeper.finish() without a failed write');
    await this.opening;
    if (this.file && this.saveError === undefined) {
      try {
        this.file.close();
      } catch (e) {
        this.saveError = e;
      }
    }
    if (this.saveError !== undefined || !this.file) return this.unsavedError();
    // Every result of the earlier files is in the new one.
    dropSaved(this.call.previous.filter((f) => f !== this.file?.path));
    const n = this.results.size;
    return err.withHint(`The ${n} result${n === 1 ? ' is' : 's are'} saved in ${this.file.path}; ` +
      'run the same call again once the output can be written, and it writes them without running the op again.');
  }

  private async open(): Promise<void> {
    try {
      const header: Header = {
        format: FORMAT, version: 1, name: this.call.name, key: await this.call.key(), items: this.call.items,
        outputs: this.call.outputs, error: this.writeError?.message ?? '',
      };
      this.dir = unwrittenDir();
      this.file = SaveFile.create(this.dir, header);
      for (const [i, r] of this.results) this.append(i, r);
    } catch (e) {
      this.saveError = e;
    }
  }

  private append(index: number, result: unknown): void {
    if (this.saveError !== undefined) return;
    try {
      this.file!.append(index, result);
    } catch (e) {
      this.saveError = e;
    }
  }

  private unsavedError(): OutputWriteError {
    const target = this.file?.path ?? (this.dir && path.join(this.dir, 'results.jsonl'));
    const detail = target ? `in ${path.dirname(target)}: ${describeWriteFailure(target, this.saveError)}` : describeWriteFailure('', this.saveError);
    const where = this.file ? `; what was saved before that is in ${this.file.path}, and the rerun uses it` : '';
    return this.writeError!.withHint(`The results could not be saved either (${detail})${where}. ` +
      'Fix that and run again: the op runs again for the results not saved.');
  }
}

/** A stand-in for an op's code identity when its module cannot be bundled: its own source text. */
export function sourceHash(fn: (...args: never[]) => unknown): string {
  return crypto.createHash('sha256').update(fn.toString()).digest('hex');
}
