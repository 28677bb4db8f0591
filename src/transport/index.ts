// Choosing the transport for a system: none needed for this machine, SSH for a host.
//
// Which SSH: xpr's built-in client (ssh2, one connection per host per process) unless told
// otherwise. The system's `ssh` program (with connection sharing) is used instead when
//   - XPR_SSH=system, or
//   - the system's remsh_cmd (config.json, else $EXPYRE_RSH, default "ssh") is anything but plain
//     "ssh" (e.g. "ssh -p 2222", "gsissh"): the user chose a command, so xpr runs it, or
//   - ~/.ssh/config reaches the host through a ProxyCommand, which only ssh can run.
// XPR_SSH=builtin forces the built-in client whatever remsh_cmd says.
import { XprError } from '../errors.js';
import type { SystemConfig } from '../config/schema.js';
import { LocalTransport } from './local.js';
import { SshTransport } from './ssh.js';
import { resolveTarget } from './ssh-target.js';
import { SystemSshTransport } from './system-ssh.js';
import type { Transport } from './types.js';

export type { ExecOptions, ExecResult, Transport } from './types.js';
export { LocalTransport } from './local.js';
export { OutcomeUnknownError } from './outcome.js';
export { SshTransport, connectionsOpened, closeAllSshConnections, type SshOptions } from './ssh.js';
export { SystemSshTransport } from './system-ssh.js';

const SSH_CHOICES = ['builtin', 'system', 'auto'] as const;

/** Which SSH client a system with a host uses (see the rule at the top of this file). */
export function sshKind(system: Pick<SystemConfig, 'name' | 'host' | 'remsh_cmd'>, env: NodeJS.ProcessEnv = process.env): 'builtin' | 'system' {
  const choice = (env['XPR_SSH'] ?? '').trim().toLowerCase() || 'auto';
  if (!(SSH_CHOICES as readonly string[]).includes(choice)) {
    throw new XprError(`XPR_SSH="${env['XPR_SSH']}" is not a known SSH client choice (known: ${SSH_CHOICES.join(', ')})`, {
      hint: 'Unset XPR_SSH to use the built-in client, or set it to "system" to use the ssh program.',
    });
  }
  if (choice !== 'auto') return choice as 'builtin' | 'system';
  if (system.remsh_cmd.trim() !== 'ssh') return 'system';
  try {
    if (system.host !== null && resolveTarget(system.host, { env }).settings.proxyCommand) return 'system';
  } catch {
    // a bad ssh_config is reported by SshTransport itself, with the host named
  }
  return 'builtin';
}

export function openTransport(system: SystemConfig, env: NodeJS.ProcessEnv = process.env): Transport {
  if (system.host === null) return new LocalTransport();
  return sshKind(system, env) === 'system'
    ? new SystemSshTransport(system.host, { remshCmd: system.remsh_cmd, env })
    : new SshTransport(system.host, { env });
}
