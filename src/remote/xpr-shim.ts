// What `import ... from 'xpr'` gives an op module inside a job. The job only needs the op itself,
// so `autoparallelize` returns a wrapper that carries the op without any of the job machinery
// (no SQLite, no SSH), keeping bundles small and free of native addons.

export interface RemoteWrapper {
  (...args: unknown[]): never;
  op: (...args: never[]) => unknown;
  opName: string;
}

export function autoparallelize(op: (...args: never[]) => unknown, defaults: { name?: string } = {}): RemoteWrapper {
  const wrapper = (() => {
    throw new Error('xpr: an autoparallelized operation cannot be called from inside a job; call its op directly');
  }) as unknown as RemoteWrapper;
  wrapper.op = op;
  wrapper.opName = defaults.name ?? op.name;
  return wrapper;
}
