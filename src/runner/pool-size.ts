// Pool sizes and chunking, shared by the local side and the job runner. Pure.

/** Names that set the number of worker processes; the first set wins. WFL's is kept for wfl users. */
export const POOL_SIZE_VARS = ['XPR_NUM_SUBPROCESSES', 'WFL_NUM_PYTHON_SUBPROCESSES'] as const;

/**
 * The pool size the environment asks for, or undefined when neither variable is set. A value like
 * `${EXPYRE_NUM_CORES_PER_NODE}` (written literally into env_vars) is looked up, as a shell would.
 */
export function poolSizeFromEnv(env: NodeJS.ProcessEnv): number | undefined {
  for (const name of POOL_SIZE_VARS) {
    let raw = env[name];
    if (raw === undefined || raw.trim() === '') continue;
    const ref = /^\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?$/.exec(raw.trim());
    if (ref) raw = env[ref[1]!] ?? '';
    const n = Number(raw);
    if (!Number.isInteger(n) || n < 0) {
      throw new Error(`${name}=${JSON.stringify(env[name])} is not a number of worker processes (a whole number, 0 for in-process)`);
    }
    return n;
  }
  return undefined;
}

/** Split a list into consecutive chunks of at most `size` items. */
export function chunk<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
