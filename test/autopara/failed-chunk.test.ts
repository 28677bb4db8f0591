// When one chunk of a remote call fails while others still run, the user is told about the failure
// that happened (its chunk, its job, the remote error), not about a chunk that was merely unfinished.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { drive, remoteInfo, sandbox, sandboxJobs, type Sandbox } from './helpers.js';

let box: Sandbox;
beforeEach(() => { box = sandbox(); });
afterEach(() => box.cleanup());

const items = (n: number) => Array.from({ length: n }, (_v, x) => ({ id: `i${x}`, x }));

describe('a chunk that fails while another still runs', () => {
  // Two chunks of two items: the one holding x = failOn throws at once, the other stays busy.
  it.each([
    { what: 'the first chunk fails, the second runs on', failing: 0, failOn: 0 },
    { what: 'the second chunk fails, the first runs on', failing: 1, failOn: 2 },
  ])('$what: raises the failed chunk\'s RemoteError, naming the chunk and its job', async ({ failing, failOn }) => {
    const info = remoteInfo({ num_inputs_per_queued_job: 2 });
    const r = await drive(box, { inputs: items(4), kwargs: { failOn, delayMs: 8000 } },
      { WFL_EXPYRE_INFO: JSON.stringify({ 'ops.js::calculate': info }) });
    expect(r.code).not.toBe(0);
    const failed = sandboxJobs(box).find((j) => j.name === `calculate_chunk_${failing}`)!;
    expect(failed.status).toBe('failed');
    expect(r.stderr).not.toMatch(/Timed out/i);
    expect(r.stderr).toContain(`RemoteError: RangeError: cannot scale x=${failOn} (in job ${failed.id})`);
    expect(r.stderr).toContain(`chunk ${failing} (job ${failed.id}) failed`);
  });
});
