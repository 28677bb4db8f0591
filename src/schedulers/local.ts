// The `local` scheduler: the same pure text functions as slurm/pbs/sge, speaking to xpr's own
// local queue (`src/localq`), a real queue that runs job scripts as detached process groups on this
// machine, at most as many cores at once as the machine has, and outlives the submitting process.
import { formatMemory } from '../resources/units.js';
import { distFile } from '../util/paths.js';
import { shQuote } from '../util/shell.js';
import type { FailureReason, RemoteState, RemoteStatus, Scheduler, ScriptContext } from './types.js';

/** `node <xpr>/dist/src/localq/main.js`, quoted; resolved lazily so importing needs no build. */
function localq(): string {
  return `${shQuote(process.execPath)} ${shQuote(distFile('localq/main.js'))}`;
}

const STATES: Record<string, { status: RemoteStatus; reason?: FailureReason }> = {
  PENDING: { status: 'queued' },
  HELD: { status: 'held' },
  RUNNING: { status: 'running' },
  COMPLETED: { status: 'done' },
  FAILED: { status: 'failed' },
  CANCELLED: { status: 'failed', reason: 'CANCELLED' },
  TIMEOUT: { status: 'timeout', reason: 'TIMEOUT' },
};

export const local: Scheduler = {
  name: 'local',
  directivePrefix: '#LOCALQ',
  directives(ctx: ScriptContext): string[] {
    const lines = [
      `#LOCALQ --job-name=${ctx.schedName}`,
      `#LOCALQ --cores=${ctx.node.numCores}`,
      `#LOCALQ --time=${ctx.node.maxTime}`,
      `#LOCALQ --output=${ctx.stdoutFile}`,
      `#LOCALQ --error=${ctx.stderrFile}`,
    ];
    if (ctx.arraySize > 0) lines.push(`#LOCALQ --array=${ctx.arraySize}`);
    return lines;
  },
  arrayIndexExpr: '$XPR_LOCALQ_ARRAY_TASK_ID',
  formatTime: (seconds) => String(seconds),
  // The local queue takes no memory request; a header line may still show the amount, written as
  // config.json writes it.
  formatMem: (kB) => formatMemory(kB, { style: 'pbs' }),

  submitCommand: (scriptFile) => `${localq()} submit ${shQuote(scriptFile)}`,
  parseSubmit(stdout) {
    const id = stdout.trim().split('\n').pop()?.trim() ?? '';
    if (!/^\d+$/.test(id)) throw new Error(`localq submit printed no job id: ${JSON.stringify(stdout)}`);
    return id;
  },
  arrayElementId: (parentId, index) => `${parentId}_${index}`,

  statusCommand: (ids) => `${localq()} status ${ids.map(shQuote).join(' ')}`,
  parseStatus(stdout) {
    const out = new Map<string, RemoteState>();
    for (const line of stdout.split('\n')) {
      const [task, state, exit] = line.trim().split(/\s+/);
      if (!task || !state) continue;
      const known = STATES[state] ?? { status: 'other' as const };
      out.set(task, {
        ...known,
        raw: state,
        ...(exit && exit !== '-' ? { exitCode: Number(exit) } : {}),
      });
    }
    return out;
  },

  findByNameCommand: (schedName) => `${localq()} find-name ${shQuote(schedName)}`,
  parseFindByName: (stdout) => stdout.trim().split('\n').filter(Boolean).pop(),

  // The queue keeps every task's end state in its own files, so status already is the record.
  recordCommand: () => undefined,
  parseRecord: () => new Map(),

  cancelCommand: (ids) => `${localq()} cancel ${ids.map(shQuote).join(' ')}`,
};
