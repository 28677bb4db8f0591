// `xpr executor submit`: submit inputs to a workflow of a running executor, one submission per
// input. An input file is one JSON value; a JSON Lines file (.jsonl, .ndjson) holds one input per
// line. All inputs go in one request, so a thousand inputs cost one round trip.
import fs from 'node:fs';
import path from 'node:path';
import { XprError } from '../../../errors.js';
import { table, type FormatOptions } from '../../format.js';
import { findExecutor, type ExecutorTarget } from './connect.js';

export interface SubmitOptions extends ExecutorTarget {
  /** The workflow's name. */
  workflow: string;
  /** Input files: JSON (one input) or JSON Lines (one per line). */
  inputs: readonly string[];
}

export interface SubmitResult {
  workflow: string;
  items: { input: string; id: string }[];
}

/** One input per JSON file, one per line of a JSON Lines file; `where` names the file (and line) in results and errors. */
export function readInputs(files: readonly string[], cwd: string): { where: string; value: unknown }[] {
  if (files.length === 0) {
    throw new XprError('No input: give --input <file.json> (repeatable) or --input <inputs.jsonl>', {
      hint: 'A .json file holds one input; a .jsonl file one input per line.',
    });
  }
  const out: { where: string; value: unknown }[] = [];
  for (const file of files) {
    const full = path.resolve(cwd, file);
    let text: string;
    try {
      text = fs.readFileSync(full, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new XprError(`Cannot read the input file ${full}${code === 'ENOENT' ? ': it does not exist' : `: ${(err as Error).message}`}`);
    }
    if (/\.(jsonl|ndjson)$/i.test(file)) {
      text.split('\n').forEach((line, i) => {
        if (line.trim() === '') return;
        out.push({ where: `${file}:${i + 1}`, value: parseJson(line, `${full}, line ${i + 1}`) });
      });
    } else {
      out.push({ where: file, value: parseJson(text, full) });
    }
  }
  if (out.length === 0) throw new XprError(`The input files ${files.join(', ')} hold no input`);
  return out;
}

function parseJson(text: string, where: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new XprError(`${where} is not valid JSON: ${(err as Error).message}`, {
      hint: 'A .json input file holds one JSON value; a .jsonl file one JSON value per line.',
    });
  }
}

export async function submit(opts: SubmitOptions): Promise<SubmitResult> {
  const inputs = readInputs(opts.inputs, opts.cwd ?? process.cwd());
  const { client } = findExecutor(opts);
  const ids = await client.submitMany(opts.workflow, inputs.map((i) => i.value));
  return { workflow: opts.workflow, items: inputs.map((input, k) => ({ input: input.where, id: ids[k] ?? '' })) };
}

export function renderSubmit(r: SubmitResult, fmt: FormatOptions): string {
  return table([{ header: 'input' }, { header: 'id' }], r.items.map((i) => [i.input, i.id]), fmt);
}
