// Choosing the transport for a system: none needed for this machine, SSH for a host.
import { XprError } from '../errors.js';
import type { SystemConfig } from '../config/schema.js';
import { LocalTransport } from './local.js';
import type { Transport } from './types.js';

export type { ExecOptions, ExecResult, Transport } from './types.js';
export { LocalTransport } from './local.js';

export function openTransport(system: SystemConfig): Transport {
  if (system.host === null) return new LocalTransport();
  throw new XprError(`System "${system.name}" needs SSH to ${system.host}, which this build of xpr cannot open yet`, {
    hint: 'Use a system without "host" (such as the built-in "local") for now.',
  });
}
