// What users write: workflow() refuses mistakes when the module loads, naming the workflow, the
// stage and what is valid; task addresses do not depend on key order.
import { describe, expect, it } from 'vitest';
import { canonicalJson, sharedKey, taskId } from '../../src/executor/canonical.js';
import { findWorkflow, workflow } from '../../src/executor/workflow.js';

const run = async (x: unknown) => x;

describe('workflow()', () => {
  it('keeps the stages in order with each defaulting to false', () => {
    const wf = workflow('bespoke', [{ stage: 'fragmenter', run }, { stage: 'qc-compute', run, each: true }]);
    expect(wf.kind).toBe('xpr-workflow');
    expect(wf.stages.map((s) => [s.stage, s.each])).toEqual([['fragmenter', false], ['qc-compute', true]]);
  });

  it.each([
    [() => workflow('has space', [{ stage: 'a', run }]), /workflow\("has space", \.\.\.\): the name must be/],
    [() => workflow('w', []), /workflow "w": the stages must be a non-empty array/],
    [() => workflow('w', [{ stage: 'a:b', run }]), /workflow "w", stage 0: "stage" must be .* got "a:b"/],
    [() => workflow('w', [{ stage: 'a', run }, { stage: 'a', run }]), /two stages are named "a"/],
    [() => workflow('w', [{ stage: 'a', run: 'fit' as never }]), /stage 0 \("a"\): "run" must be a function .* got "fit"/],
    [() => workflow('w', [{ stage: 'a', run, each: 'yes' as never }]), /"each" must be true or false, got "yes"/],
    [() => workflow('w', [{ stage: 'a', run, eachh: true } as never]), /unknown key "eachh" \(valid: stage, run, each\)/],
  ])('refuses mistakes with a message naming them (%#)', (make, message) => {
    expect(make).toThrow(message);
  });

  it('finds a workflow among a module\'s exports, or names the known ones', () => {
    const ns = { a: workflow('alpha', [{ stage: 's', run }]), helper: run, b: workflow('beta', [{ stage: 's', run }]) };
    expect(findWorkflow(ns, 'beta').exportName).toBe('b');
    expect(() => findWorkflow(ns, 'gamma', 'wf.js')).toThrow('wf.js has no workflow "gamma" (known: alpha, beta)');
  });
});

describe('task addresses', () => {
  it('do not depend on the order of object keys, and depend on the submission input', () => {
    expect(canonicalJson({ b: 1, a: [{ d: 1, c: 2 }] })).toBe('{"a":[{"c":2,"d":1}],"b":1}');
    const base = { workflow: 'w', stage: 's', codeHash: 'h', input: { x: 1, y: 2 } };
    expect(taskId({ ...base, submissionInput: 1 })).toBe(taskId({ ...base, input: { y: 2, x: 1 }, submissionInput: 1 }));
    expect(taskId({ ...base, submissionInput: 1 })).not.toBe(taskId({ ...base, submissionInput: 2 }));
    expect(sharedKey(base)).toMatch(/^[0-9a-f]{64}$/);
    expect(sharedKey(base)).not.toBe(sharedKey({ ...base, stage: 't' }));
  });
});
