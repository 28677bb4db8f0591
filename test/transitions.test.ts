// The job status table and the one function that applies it, against a real SQLite file.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { XprError } from '../src/errors.js';
import { applyTransition, TRANSITIONS, type JobEvent } from '../src/job/transitions.js';
import { JobStore } from '../src/store/jobstore.js';
import { JOB_STATUSES, type JobStatus } from '../src/store/status.js';

let dir: string;
let store: JobStore;
let n = 0;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xpr-transitions-'));
  store = JobStore.open(path.join(dir, 'jobs.db'));
});
afterEach(() => {
  store.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** A job recorded in `status`. */
function jobIn(status: JobStatus): string {
  const id = `j${++n}`;
  store.insert({ id, name: id, hash: `h-${id}`, stageDir: path.join(dir, `run_${id}`), status, info: { kept: 1 } });
  return id;
}

const allowed = JOB_STATUSES.flatMap((from) =>
  Object.entries(TRANSITIONS[from]).flatMap(([event, tos]) => tos.map((to) => ({ from, event: event as JobEvent, to }))));

describe('the job status table', () => {
  it('names every status, and reset leads from each to any', () => {
    expect(Object.keys(TRANSITIONS).sort()).toEqual([...JOB_STATUSES].sort());
    for (const s of JOB_STATUSES) expect(TRANSITIONS[s].reset).toEqual(JOB_STATUSES);
  });

  it.each(allowed)('$from --$event--> $to: applied, with the why written along', ({ from, event, to }) => {
    const id = jobIn(from);
    const moved = applyTransition(store, id, {
      event, from, ...(event === 'reset' ? { to } : {}), fields: { remoteReason: 'CANCELLED', info: { why: event } },
    });
    expect(moved.applied).toBe(true);
    expect(moved.record).toMatchObject({ id, status: to, remoteReason: 'CANCELLED', info: { why: event } });
    expect(store.get(id)!.status).toBe(to);
  });

  it.each([
    ['created', 'succeed', 'succeeded'],
    ['created', 'process', 'processed'],
    ['submitted', 'submit', 'submitted'],
    ['submitted', 'clean', 'cleaned'],
    ['started', 'cancel', 'failed'],
    ['succeeded', 'die', 'died'],
    ['failed', 'mark_failed', 'failed'],
    ['failed', 'start', 'started'],
    ['processed', 'succeed', 'succeeded'],
    ['cleaned', 'process', 'processed'],
  ] as [JobStatus, JobEvent, JobStatus][])('%s --%s--> refused, naming the job, both statuses and what is allowed', (from, event, to) => {
    const id = jobIn(from);
    let err: unknown;
    try {
      applyTransition(store, id, { event, from });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(XprError);
    const message = (err as Error).message;
    expect(message).toContain(`Job ${id} cannot go from ${from} to ${to} (${event})`);
    for (const e of Object.keys(TRANSITIONS[from])) expect(message).toContain(`${e} (to `);
    expect(message).toContain('reset (to any status)');
    expect(store.get(id)!.status).toBe(from);
  });

  it('refuses a reset without a status to go to, and a to-status the event does not lead to', () => {
    const id = jobIn('created');
    expect(() => applyTransition(store, id, { event: 'reset', from: 'created' })).toThrow(/cannot go from created to \? \(reset\)/);
    expect(() => applyTransition(store, id, { event: 'submit', from: 'created', to: 'started' })).toThrow(/cannot go from created to started \(submit\)/);
    expect(store.get(id)!.status).toBe('created');
  });

  it('checks every from-status given: one that does not allow the event is refused before anything is written', () => {
    const id = jobIn('submitted');
    expect(() => applyTransition(store, id, { event: 'die', from: ['submitted', 'created'] })).toThrow(/cannot go from created to died \(die\)/);
    expect(store.get(id)!.status).toBe('submitted');
    expect(applyTransition(store, id, { event: 'die', from: ['submitted', 'started'] }).record?.status).toBe('died');
  });

  it('reports a lost race: the job left the status it was read in, and is left as the other process made it', () => {
    const id = jobIn('submitted');
    // Another process moves it on first.
    expect(applyTransition(store, id, { event: 'start', from: 'submitted' }).applied).toBe(true);
    const late = applyTransition(store, id, { event: 'die', from: 'submitted', fields: { remoteReason: 'TIMEOUT' } });
    expect(late).toEqual({ applied: false, record: expect.objectContaining({ id, status: 'started', remoteReason: null }) });
  });

  it('reports a job removed meanwhile as a lost race with no record', () => {
    const id = jobIn('created');
    store.delete([id]);
    expect(applyTransition(store, id, { event: 'cancel', from: 'created' })).toEqual({ applied: false, record: undefined });
  });
});
