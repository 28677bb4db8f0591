// What users write: `workflow(name, stages)`, checked when the module loads, so a typo shows up
// when the executor starts rather than when the first task reaches a worker. And the lookups the
// executor and the workers make in an imported workflow module.
import { XprError } from '../errors.js';
import type { StageSpec, Workflow, WorkflowRecord } from './types.js';

/**
 * Names end up in BullMQ queue names (`xpr-stage-<stage>`), Redis keys and URLs: letters, digits,
 * `_`, `-` and `.`, starting with a letter or digit. BullMQ refuses `:` in queue names.
 */
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$/;
const STAGE_KEYS = ['stage', 'run', 'each'];

/** A workflow: its stages run in order, each on the output of the one before. */
export function workflow(name: string, stages: readonly StageSpec[]): Workflow {
  if (typeof name !== 'string' || !NAME.test(name)) {
    throw new XprError(`workflow(${JSON.stringify(name)}, ...): the name must be 1-100 letters, digits, "_", "-" or "." starting with a letter or digit`, {
      hint: 'The name is how submissions pick the workflow, e.g. workflow("bespoke", [...]).',
    });
  }
  const where = `workflow "${name}"`;
  if (!Array.isArray(stages) || stages.length === 0) {
    throw new XprError(`${where}: the stages must be a non-empty array of { stage, run, each? }`, {
      hint: `e.g. workflow("${name}", [{ stage: "fragmenter", run: fragment }, { stage: "qc", run: scan, each: true }])`,
    });
  }
  const seen = new Set<string>();
  const checked = stages.map((spec, i) => {
    const at = `${where}, stage ${i}`;
    if (typeof spec !== 'object' || spec === null) throw new XprError(`${at}: expected { stage, run, each? }, got ${describe(spec)}`);
    const unknown = Object.keys(spec).filter((k) => !STAGE_KEYS.includes(k));
    if (unknown.length > 0) {
      throw new XprError(`${at}: unknown key ${unknown.map((k) => `"${k}"`).join(', ')} (valid: ${STAGE_KEYS.join(', ')})`);
    }
    if (typeof spec.stage !== 'string' || !NAME.test(spec.stage)) {
      throw new XprError(`${at}: "stage" must be 1-100 letters, digits, "_", "-" or "." starting with a letter or digit, got ${describe(spec.stage)}`, {
        hint: 'The stage name is the name of its queue: workers are started per stage name (--workers qc-compute=2).',
      });
    }
    if (seen.has(spec.stage)) throw new XprError(`${where}: two stages are named "${spec.stage}"; stage names must be unique in a workflow`);
    seen.add(spec.stage);
    if (typeof spec.run !== 'function') {
      throw new XprError(`${at} ("${spec.stage}"): "run" must be a function (input, ctx) => result, got ${describe(spec.run)}`, {
        hint: 'Pass the function itself, e.g. { stage: "fit", run: fit }, not its name or its result.',
      });
    }
    if (spec.each !== undefined && typeof spec.each !== 'boolean') {
      throw new XprError(`${at} ("${spec.stage}"): "each" must be true or false, got ${describe(spec.each)}`);
    }
    return Object.freeze({ stage: spec.stage, run: spec.run, each: spec.each === true });
  });
  return Object.freeze({ kind: 'xpr-workflow', name, stages: Object.freeze(checked) });
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return JSON.stringify(v);
  return typeof v;
}

export function isWorkflow(v: unknown): v is Workflow {
  return typeof v === 'object' && v !== null && (v as { kind?: unknown }).kind === 'xpr-workflow';
}

/** Every workflow a module exports, with the export that holds it. */
export function workflowsIn(moduleNs: Record<string, unknown>): { exportName: string; workflow: Workflow }[] {
  return Object.entries(moduleNs)
    .filter((e): e is [string, Workflow] => isWorkflow(e[1]))
    .map(([exportName, workflow]) => ({ exportName, workflow }));
}

/** The workflow called `name` in a module; an unknown name is answered with the known ones. */
export function findWorkflow(moduleNs: Record<string, unknown>, name: string, file = 'the workflow module'): { exportName: string; workflow: Workflow } {
  const all = workflowsIn(moduleNs);
  const found = all.find((w) => w.workflow.name === name);
  if (found) return found;
  const known = all.map((w) => w.workflow.name);
  throw new XprError(`${file} has no workflow "${name}" (${known.length ? `known: ${known.join(', ')}` : 'it exports none'})`, {
    hint: 'A workflow is an export whose value is workflow("name", [...]) from xpr.',
  });
}

/** What the executor stores about a workflow: its stages' shape and where its code is. */
export function workflowRecord(wf: Workflow, codeHash: string, exportName: string): WorkflowRecord {
  return { name: wf.name, codeHash, exportName, stages: wf.stages.map((s) => ({ stage: s.stage, each: s.each === true })) };
}
