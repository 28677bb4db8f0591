// Time and memory values as users write them in config.json, remoteinfo and resources (the forms
// ExPyRe accepts), parsed to plain integers: seconds and kB. Also the few ways schedulers want them
// written back. Parsing is strict: a value xpr cannot read exactly is an error naming the valid forms,
// never a guess.
import { XprError } from '../errors.js';

export const TIME_FORMATS =
  "integer seconds (3600), '<n>[smhd]' ('90s', '30m', '1.5h', '2d'; case-insensitive) " +
  "or '[D-]HH:MM:SS' ('1-12:00:00', '2:00:00', '30:00' = 30 min, '45' = 45 s)";

export const MEMORY_FORMATS =
  "integer kB (4194304) or '<n>[kmgt]b' ('512mb', '4gb', '1.5TB'; case-insensitive, the 'b' is optional, " +
  'units are powers of 1024)';

const SECONDS: Record<string, bigint> = { s: 1n, m: 60n, h: 3600n, d: 86400n };
const KILOBYTES: Record<string, bigint> = { k: 1n, m: 1024n, g: 1024n ** 2n, t: 1024n ** 3n };

// `<digits>[.<digits>]` then an optional space and a unit letter, as ExPyRe's regexps (no exponent,
// no sign, no leading '.').
const TIME_UNIT = /^(\d+)(?:\.(\d*))?\s*([smhd])$/;
const TIME_COLON = /^(?:(\d+)-)?(\d+(?::\d+){0,2})$/;
const MEMORY_UNIT = /^(\d+)(?:\.(\d*))?\s*([kmgt])b?$/;

function quote(v: unknown): string {
  return typeof v === 'string' ? JSON.stringify(v) : String(v);
}

/**
 * `whole.frac × unit`, truncated to an integer as ExPyRe's `int(float(...))` does, but computed
 * exactly: in floating point `4.35h` would come out one second short (15659 instead of 15660).
 */
function scaleDecimal(whole: string, frac: string, unit: bigint): bigint {
  const scale = 10n ** BigInt(frac.length);
  return (BigInt(whole + frac) * unit) / scale;
}

function toSafe(n: bigint, what: string, v: unknown): number {
  if (n > BigInt(Number.MAX_SAFE_INTEGER)) throw new XprError(`Invalid ${what} ${quote(v)}: too large`);
  return Number(n);
}

function badTime(v: unknown, why?: string): XprError {
  return new XprError(`Invalid time ${quote(v)}${why ? ` (${why})` : ''}: expected ${TIME_FORMATS}`);
}

/** A time limit in seconds from `3600`, `'3600'`, `'1h'`, `'1.5h'`, `'2-12:00:00'`, `'30:00'`… */
export function parseTime(v: number | string): number {
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v) || v < 0) throw badTime(v, 'not a non-negative integer');
    return v;
  }
  if (typeof v !== 'string') throw badTime(v);
  const s = v.trim().toLowerCase();

  const unit = TIME_UNIT.exec(s);
  if (unit) {
    const [, whole = '', frac = '', letter = 's'] = unit;
    return toSafe(scaleDecimal(whole, frac, SECONDS[letter] ?? 1n), 'time', v);
  }

  const colon = TIME_COLON.exec(s);
  if (colon) {
    const [, days, hms = ''] = colon;
    const fields = hms.split(':');
    // ExPyRe reads '1-12:00' as 1 day + 12 min, SLURM as 1 day + 12 h. Rather than pick one
    // silently, a day count needs the full HH:MM:SS after it.
    if (days !== undefined && fields.length !== 3) {
      throw badTime(v, `ambiguous: after 'D-' write HH:MM:SS, e.g. '${days}-${fields.length === 1 ? fields[0] : '00'}:00:00'`);
    }
    // The leading field may be any size ('90:00' is 90 minutes, '36:00:00' is 36 hours); the ones
    // after it are minutes or seconds of the one before.
    let total = BigInt(days ?? '0') * 86400n;
    let acc = 0n;
    fields.forEach((f, i) => {
      if (i > 0 && Number(f) >= 60) throw badTime(v, `field '${f}' must be below 60`);
      acc = acc * 60n + BigInt(f);
    });
    total += acc;
    return toSafe(total, 'time', v);
  }

  if (s === '') throw badTime(v, 'empty');
  if (s.startsWith('-')) throw badTime(v, 'negative');
  throw badTime(v);
}

function badMemory(v: unknown, why?: string): XprError {
  return new XprError(`Invalid memory ${quote(v)}${why ? ` (${why})` : ''}: expected ${MEMORY_FORMATS}`);
}

/** A memory size in kB from `4194304`, `'4gb'`, `'4G'`, `'512 MB'`, `'1.5tb'`… */
export function parseMemory(v: number | string): number {
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v) || v < 0) throw badMemory(v, 'not a non-negative integer');
    return v;
  }
  if (typeof v !== 'string') throw badMemory(v);
  const s = v.trim().toLowerCase();
  const m = MEMORY_UNIT.exec(s);
  if (m) {
    const [, whole = '', frac = '', letter = 'k'] = m;
    return toSafe(scaleDecimal(whole, frac, KILOBYTES[letter] ?? 1n), 'memory', v);
  }
  // A bare number in a string is kB to ExPyRe's int branch but MB to SLURM's --mem; refuse to guess.
  if (/^\d+(\.\d*)?$/.test(s)) throw badMemory(v, 'no unit; write e.g. ' + `'${s}kb' or '${s}mb'`);
  if (s === '') throw badMemory(v, 'empty');
  if (s.startsWith('-')) throw badMemory(v, 'negative');
  throw badMemory(v);
}

/**
 * A memory limit in kB (a partition's max_mem): as parseMemory, but more than 0. A node with no
 * memory is a typo, and a limit of 0 would turn every job down; no limit is written as null.
 */
export function parseMemoryLimit(v: number | string): number {
  const kB = parseMemory(v);
  if (kB === 0) throw new XprError(`Invalid memory ${quote(v)}: a memory limit must be more than 0 (null means no limit)`);
  return kB;
}

/**
 * Seconds as schedulers want them. `'hms'`: `HH:MM:SS` with hours past 24 (PBS/SGE walltime,
 * `49:00:10`). `'slurm'`: `D-HH:MM:SS` from one day on, else `HH:MM:SS`.
 */
export function formatTime(seconds: number, style: 'slurm' | 'hms' = 'hms'): string {
  if (!Number.isSafeInteger(seconds) || seconds < 0) {
    throw new RangeError(`formatTime: expected a non-negative integer number of seconds, got ${seconds}`);
  }
  const pad = (n: number): string => String(n).padStart(2, '0');
  const ms = `${pad(Math.floor(seconds / 60) % 60)}:${pad(seconds % 60)}`;
  const hours = Math.floor(seconds / 3600);
  if (style === 'slurm' && hours >= 24) return `${Math.floor(hours / 24)}-${pad(hours % 24)}:${ms}`;
  return `${pad(hours)}:${ms}`;
}

export type MemoryUnit = 'k' | 'm' | 'g' | 't';

const UNIT_KB: Record<MemoryUnit, number> = { k: 1, m: 1024, g: 1024 ** 2, t: 1024 ** 3 };

/**
 * kB as a scheduler memory value. `style` `'slurm'`/`'sge'` give `4G` (`--mem`, `h_vmem`), `'pbs'`
 * gives `4gb` (`mem=`), which is also the form users write. With `unit`, rounds *up* to it (asking
 * for less than needed gets a job killed); without, uses the largest unit that is exact.
 */
export function formatMemory(kB: number, options: { unit?: MemoryUnit; style?: 'slurm' | 'sge' | 'pbs' } = {}): string {
  if (!Number.isSafeInteger(kB) || kB < 0) {
    throw new RangeError(`formatMemory: expected a non-negative integer number of kB, got ${kB}`);
  }
  const units: MemoryUnit[] = ['t', 'g', 'm', 'k'];
  const unit = options.unit ?? units.find((u) => kB % UNIT_KB[u] === 0 && kB > 0) ?? 'k';
  const n = Math.ceil(kB / UNIT_KB[unit]);
  return options.style === 'pbs' ? `${n}${unit}b` : `${n}${unit.toUpperCase()}`;
}
