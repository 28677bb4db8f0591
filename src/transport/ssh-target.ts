// From a system's `host` to everything needed to reach it: the effective ssh_config settings, the
// chain of ProxyJump hosts (each resolved through the same config, as `ssh -J` does), and the key
// under which one connection per endpoint is shared across the process.
import os from 'node:os';
import path from 'node:path';
import { UnreachableError } from '../errors.js';
import { loadSshConfig, parseJumpHop, resolveSshHost, type SshConfigNode, type SshHostSettings } from './ssh-config.js';

export interface SshOptions {
  /**
   * The only ssh_config file to read, as `ssh -F FILE` (default: $XPR_SSH_CONFIG, else
   * ~/.ssh/config then /etc/ssh/ssh_config).
   */
  configFile?: string;
  /** known_hosts files to check instead of the configured ones. */
  knownHostsFiles?: string[];
  /** Environment to read XPR_SSH_CONFIG and SSH_AUTH_SOCK from (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Home dir for `~` (default os.homedir()). */
  home?: string;
}

export interface SshTarget {
  /** As the user wrote it (system host, alias, or jump hop). */
  label: string;
  settings: SshHostSettings;
  /** Host to connect through, already resolved; undefined for a direct connection. */
  jump: SshTarget | undefined;
  /** Local home dir (where the default key files are). */
  home: string;
  /** The only ssh_config file read (option or $XPR_SSH_CONFIG); commands in messages pass it as `-F`. */
  configFile: string | undefined;
  /** Shared-connection key: the resolved endpoint, the route to it and the config used. */
  key: string;
}

const MAX_HOPS = 8;

/** Resolve `host` (`alias` or `user@alias`) through ssh_config; throws UnreachableError on bad config. */
export function resolveTarget(host: string, options: SshOptions = {}): SshTarget {
  const env = options.env ?? process.env;
  const home = options.home ?? os.homedir();
  const configFile = options.configFile ?? (env['XPR_SSH_CONFIG'] || undefined);
  let nodes: SshConfigNode[];
  try {
    nodes = configFile
      ? loadSshConfig(configFile, { home, includeBase: path.dirname(configFile) })
      : [...loadSshConfig(path.join(home, '.ssh', 'config'), { home }),
         ...loadSshConfig('/etc/ssh/ssh_config', { home, includeBase: '/etc/ssh' })];
  } catch (e) {
    throw new UnreachableError(host, `Cannot read the SSH config for ${host}: ${(e as Error).message}`, {
      hint: 'Fix the file named above (see man ssh_config).',
    });
  }
  const ctx = { localUser: safeUser(), home, localHost: os.hostname(), authSock: env['SSH_AUTH_SOCK'] };
  const scope = `${configFile ?? '~'}|${(options.knownHostsFiles ?? []).join(':')}`;

  const resolve = (label: string, port: number | undefined, jumps: string[] | undefined, depth: number): SshTarget => {
    if (depth > MAX_HOPS) {
      throw new UnreachableError(host, `ProxyJump for ${host} goes through more than ${MAX_HOPS} hosts (a loop?)`, {
        hint: 'Exclude the jump host from the Host pattern that sets ProxyJump (e.g. "Host * !bastion").',
      });
    }
    let settings: SshHostSettings;
    try {
      settings = resolveSshHost(nodes, label, ctx);
    } catch (e) {
      throw new UnreachableError(host, `Bad SSH config for ${label}: ${(e as Error).message}`, { hint: 'See man ssh_config.' });
    }
    if (port !== undefined) settings = { ...settings, port };
    if (jumps !== undefined) settings = { ...settings, proxyJump: jumps };
    if (options.knownHostsFiles) settings = { ...settings, userKnownHostsFiles: options.knownHostsFiles, globalKnownHostsFiles: [] };
    let jump: SshTarget | undefined;
    const hops = settings.proxyJump;
    if (hops.length > 0) {
      // `ssh -J a,b target` reaches b through a, then target through b.
      let hop: ReturnType<typeof parseJumpHop>;
      try {
        hop = parseJumpHop(hops[hops.length - 1]!);
      } catch (e) {
        throw new UnreachableError(host, `Bad ProxyJump for ${label}: ${(e as Error).message}`, { hint: 'See man ssh_config.' });
      }
      const hopLabel = hop.user ? `${hop.user}@${hop.host}` : hop.host;
      jump = resolve(hopLabel, hop.port, hops.length > 1 ? hops.slice(0, -1) : undefined, depth + 1);
    }
    const s = settings;
    // The config files are part of the key, so two configs (tests) never share a connection.
    const key = `${s.user}@${s.hostName}:${s.port}${jump ? ` via ${jump.key}` : ` [${scope}]`}`;
    return { label, settings, jump, home, key, configFile };
  };
  return resolve(host, undefined, undefined, 0);
}

function safeUser(): string {
  try {
    return os.userInfo().username;
  } catch {
    return process.env['USER'] ?? 'root';
  }
}
