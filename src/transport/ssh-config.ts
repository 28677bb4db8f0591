// A reader for OpenSSH client config (ssh_config(5)), enough to reach a host as `ssh HOST` would:
// Host/Match blocks, first value wins, Include, and the `%` tokens of path options. Parsing is pure;
// `loadSshConfig` only reads the files. Options xpr does not use are parsed and ignored.
import fs from 'node:fs';
import path from 'node:path';
import { expandFileGlob, hasGlobMagic } from '../util/file-glob.js';
import { sshPatternListMatches } from './ssh-patterns.js';

/** One `Keyword args` line, or an Include already read, or a Host/Match line that opens a block. */
export type SshConfigNode =
  | { kind: 'option'; keyword: string; args: string[]; file: string; line: number }
  | { kind: 'host'; patterns: string[] }
  | { kind: 'match'; criteria: string[] }
  | { kind: 'include'; nodes: SshConfigNode[] };

export type StrictHostKeyChecking = 'yes' | 'ask' | 'accept-new' | 'no';

/** What OpenSSH would use to reach one host alias. Paths are absolute, tokens expanded. */
export interface SshHostSettings {
  /** The alias as given (what `Host` patterns matched). */
  alias: string;
  hostName: string;
  user: string;
  port: number;
  /** From config; empty when none was given (the caller then tries the default key files). */
  identityFiles: string[];
  identitiesOnly: boolean;
  /** `[user@]host[:port]` hops, first hop first; empty for a direct connection. */
  proxyJump: string[];
  proxyCommand: string | undefined;
  strictHostKeyChecking: StrictHostKeyChecking;
  userKnownHostsFiles: string[];
  globalKnownHostsFiles: string[];
  /** Name to look up in known_hosts instead of the host name. */
  hostKeyAlias: string | undefined;
  /** Agent socket: IdentityAgent, else $SSH_AUTH_SOCK; undefined for none. */
  identityAgent: string | undefined;
  batchMode: boolean;
  connectTimeoutMs: number | undefined;
  serverAliveIntervalMs: number | undefined;
  serverAliveCountMax: number | undefined;
}

export interface ResolveContext {
  /** Local user name (default User, `%u`). */
  localUser: string;
  /** Local home dir (`~`, `%d`). */
  home: string;
  /** Local host name (`%l`). */
  localHost?: string;
  /** $SSH_AUTH_SOCK. */
  authSock?: string | undefined;
}

// Options that may be given several times and accumulate instead of "first value wins".
const MULTI = new Set(['identityfile', 'certificatefile', 'localforward', 'remoteforward', 'dynamicforward', 'sendenv', 'setenv']);

/** Split a config line's arguments: whitespace separates, double or single quotes group, `\` escapes. */
export function splitArgs(text: string): string[] {
  const out: string[] = [];
  let cur = '';
  let inWord = false;
  let quote: string | undefined;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quote) {
      if (c === quote) quote = undefined;
      else if (c === '\\' && text[i + 1] === quote) cur += text[++i];
      else cur += c;
    } else if (c === '"' || c === "'") {
      quote = c;
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) out.push(cur);
      cur = '';
      inWord = false;
    } else if (c === '#' && !inWord) {
      break; // a comment after the arguments
    } else {
      // Like ssh, `\` escapes only a space, a quote or itself; elsewhere it is literal.
      const next = text[i + 1];
      cur += c === '\\' && next !== undefined && /[\s'"\\]/.test(next) ? text[++i] : c;
      inWord = true;
    }
  }
  if (quote) throw new Error(`unterminated quote in "${text}"`);
  if (inWord) out.push(cur);
  return out;
}

/**
 * Parse config text into nodes. `include(pattern)` returns the nodes of the files an Include
 * names (it does the I/O); without it Include lines are ignored.
 */
export function parseSshConfig(
  text: string,
  file: string,
  include?: (pattern: string) => SshConfigNode[],
): SshConfigNode[] {
  const nodes: SshConfigNode[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith('#')) return;
    const m = /^([A-Za-z][A-Za-z0-9]*)\s*(?:=\s*|\s+|$)(.*)$/.exec(line);
    if (!m) throw new Error(`${file}:${i + 1}: cannot parse "${line}"`);
    const keyword = m[1]!.toLowerCase();
    let args: string[];
    try {
      args = splitArgs(m[2]!);
    } catch (e) {
      throw new Error(`${file}:${i + 1}: ${(e as Error).message}`);
    }
    if (keyword === 'host') nodes.push({ kind: 'host', patterns: args });
    else if (keyword === 'match') nodes.push({ kind: 'match', criteria: args });
    else if (keyword === 'include') {
      if (include) for (const p of args) nodes.push({ kind: 'include', nodes: include(p) });
    } else nodes.push({ kind: 'option', keyword, args, file, line: i + 1 });
  });
  return nodes;
}

/**
 * Read a config file and the files it includes (relative Include paths are taken from
 * `includeBase`, ~/.ssh for a user's config; globs are expanded, sorted).
 * A missing file gives no nodes, as for ssh.
 */
export function loadSshConfig(file: string, options: { home: string; includeBase?: string; depth?: number }): SshConfigNode[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  const depth = options.depth ?? 0;
  const base = options.includeBase ?? path.join(options.home, '.ssh');
  const include = (pattern: string): SshConfigNode[] => {
    if (depth >= 16) throw new Error(`${file}: Include nested too deeply`);
    let p = pattern.startsWith('~/') ? path.join(options.home, pattern.slice(2)) : pattern;
    if (!path.isAbsolute(p)) p = path.join(base, p);
    return includedFiles(p).flatMap((f) => loadSshConfig(f, { ...options, includeBase: base, depth: depth + 1 }));
  };
  return parseSshConfig(text, file, include);
}

// Unlike OpenSSH's glob(3), `*` here also matches names starting with `.` (xpr has always read those).
function includedFiles(p: string): string[] {
  return hasGlobMagic(p) ? expandFileGlob(p, { dot: true }) : [p];
}

/**
 * The effective settings for `target` (`alias` or `user@alias`): options from every block that
 * applies, the first value of each winning, then defaults and token expansion.
 */
export function resolveSshHost(nodes: readonly SshConfigNode[], target: string, ctx: ResolveContext): SshHostSettings {
  const at = target.lastIndexOf('@');
  const cliUser = at >= 0 ? target.slice(0, at) : undefined;
  const alias = at >= 0 ? target.slice(at + 1) : target;
  const values = new Map<string, string[]>();
  const multi = new Map<string, string[]>();
  const visit = (list: readonly SshConfigNode[]): void => {
    let active = true; // lines before the first Host/Match apply to every host
    for (const n of list) {
      if (n.kind === 'host') active = sshPatternListMatches(n.patterns, alias);
      else if (n.kind === 'match') active = matchApplies(n.criteria, alias, values, cliUser, ctx);
      else if (!active) continue;
      else if (n.kind === 'include') visit(n.nodes);
      else if (MULTI.has(n.keyword)) multi.set(n.keyword, [...(multi.get(n.keyword) ?? []), ...n.args]);
      else if (!values.has(n.keyword)) values.set(n.keyword, n.args);
    }
  };
  visit(nodes);

  const one = (k: string): string | undefined => values.get(k)?.[0];
  const hostName = expandTokens(one('hostname') ?? alias, { h: alias, '%': '%' }).toLowerCase();
  const user = cliUser ?? one('user') ?? ctx.localUser;
  const port = parsePort(one('port'), 'Port') ?? 22;
  const tokens: Record<string, string> = {
    '%': '%', h: hostName, p: String(port), r: user, u: ctx.localUser, d: ctx.home, n: alias,
    l: ctx.localHost ?? '', i: String(process.getuid?.() ?? ''),
  };
  const pathOf = (p: string): string => expandPath(expandTokens(p, tokens), ctx.home);
  const proxyJump = one('proxyjump');
  const proxyCommand = values.get('proxycommand')?.join(' ');
  const agent = one('identityagent');
  return {
    alias,
    hostName,
    user,
    port,
    identityFiles: (multi.get('identityfile') ?? []).map(pathOf),
    identitiesOnly: yes(one('identitiesonly')),
    proxyJump: proxyJump && proxyJump.toLowerCase() !== 'none' ? proxyJump.split(',').filter(Boolean) : [],
    proxyCommand: proxyCommand && proxyCommand.toLowerCase() !== 'none' ? proxyCommand : undefined,
    strictHostKeyChecking: strictness(one('stricthostkeychecking')),
    userKnownHostsFiles: (values.get('userknownhostsfile') ?? ['~/.ssh/known_hosts', '~/.ssh/known_hosts2']).map(pathOf),
    globalKnownHostsFiles: (values.get('globalknownhostsfile') ?? ['/etc/ssh/ssh_known_hosts', '/etc/ssh/ssh_known_hosts2']).map(pathOf),
    hostKeyAlias: one('hostkeyalias'),
    identityAgent: agent === undefined
      ? ctx.authSock || undefined
      : agent.toLowerCase() === 'none' ? undefined
      : agent === 'SSH_AUTH_SOCK' ? ctx.authSock || undefined
      : pathOf(agent),
    batchMode: yes(one('batchmode')),
    connectTimeoutMs: seconds(one('connecttimeout')),
    serverAliveIntervalMs: seconds(one('serveraliveinterval')),
    serverAliveCountMax: parsePort(one('serveralivecountmax'), 'ServerAliveCountMax'),
  };
}

/** `Match` criteria xpr can judge; any other (exec, canonical, final…) makes the block not apply. */
function matchApplies(criteria: readonly string[], alias: string, values: Map<string, string[]>,
  cliUser: string | undefined, ctx: ResolveContext): boolean {
  for (let i = 0; i < criteria.length; i++) {
    let word = criteria[i]!.toLowerCase();
    const negate = word.startsWith('!');
    if (negate) word = word.slice(1);
    if (word === 'all') {
      if (negate) return false;
      continue;
    }
    const arg = criteria[++i];
    if (arg === undefined) return false;
    let subject: string;
    if (word === 'host') subject = (values.get('hostname')?.[0] ?? alias).replace(/%h/g, alias);
    else if (word === 'originalhost') subject = alias;
    else if (word === 'user') subject = cliUser ?? values.get('user')?.[0] ?? ctx.localUser;
    else if (word === 'localuser') subject = ctx.localUser;
    else return false;
    if (sshPatternListMatches([arg], subject) === negate) return false;
  }
  return true;
}

/** Replace `%x` tokens; an unknown token is an error, as in ssh. */
export function expandTokens(s: string, tokens: Record<string, string>): string {
  return s.replace(/%(.)/g, (all, c: string) => {
    const v = tokens[c];
    if (v === undefined) throw new Error(`unsupported token ${all} in "${s}"`);
    return v;
  });
}

function expandPath(p: string, home: string): string {
  if (p === '~') return home;
  if (p.startsWith('~/')) return path.join(home, p.slice(2));
  return p;
}

function yes(v: string | undefined): boolean {
  return v !== undefined && ['yes', 'true'].includes(v.toLowerCase());
}

function strictness(v: string | undefined): StrictHostKeyChecking {
  switch (v?.toLowerCase()) {
    case 'yes': case 'true': return 'yes';
    case 'accept-new': return 'accept-new';
    case 'no': case 'off': case 'false': return 'no';
    default: return 'ask';
  }
}

function parsePort(v: string | undefined, what: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${what}: expected a number, got "${v}"`);
  return n;
}

function seconds(v: string | undefined): number | undefined {
  if (v === undefined || v.toLowerCase() === 'none') return undefined;
  const n = Number(v);
  return Number.isFinite(n) && n > 0 ? n * 1000 : undefined;
}

/** One ProxyJump hop: `[user@]host[:port]`, `ssh://[user@]host[:port]`, IPv6 in brackets. */
export function parseJumpHop(hop: string): { user: string | undefined; host: string; port: number | undefined } {
  let s = hop.startsWith('ssh://') ? hop.slice('ssh://'.length) : hop;
  const at = s.lastIndexOf('@');
  const user = at >= 0 ? s.slice(0, at) : undefined;
  s = at >= 0 ? s.slice(at + 1) : s;
  const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(s) ?? /^([^:]+)(?::(\d+))?$/.exec(s);
  if (!m) throw new Error(`cannot parse ProxyJump hop "${hop}"`);
  return { user, host: m[1]!, port: m[2] === undefined ? undefined : Number(m[2]) };
}
