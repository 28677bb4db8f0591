// known_hosts as OpenSSH writes and reads it (sshd(8) "SSH_KNOWN_HOSTS FILE FORMAT"): plain host
// patterns with `*`, `?` and `!`, `[host]:port` for other ports than 22, hashed `|1|salt|hmac` names,
// and the `@revoked` / `@cert-authority` markers. Pure: callers read the files and act on the verdict.
import { createHash, createHmac } from 'node:crypto';
import { UnreachableError } from '../errors.js';
import { shWord } from '../util/shell.js';
import { sshPatternListMatches } from './ssh-patterns.js';

export interface KnownHostEntry {
  file: string;
  /** 1-based line number. */
  line: number;
  marker: 'revoked' | 'cert-authority' | undefined;
  /** The host field as written (patterns or a hashed name). */
  hosts: string;
  keyType: string;
  key: Buffer;
}

export type HostKeyVerdict =
  | { status: 'ok'; entry: KnownHostEntry }
  /** Nothing known for this key type; `otherTypes` lists keys known for the host under other types. */
  | { status: 'unknown'; otherTypes: KnownHostEntry[] }
  /** A different key of the same type is recorded for this host. */
  | { status: 'changed'; entry: KnownHostEntry }
  | { status: 'revoked'; entry: KnownHostEntry };

export function parseKnownHosts(text: string, file: string): KnownHostEntry[] {
  const out: KnownHostEntry[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const fields = raw.trim().split(/\s+/);
    if (!fields[0] || fields[0].startsWith('#')) return;
    let marker: KnownHostEntry['marker'];
    if (fields[0].startsWith('@')) {
      const m = fields.shift()!;
      if (m === '@revoked') marker = 'revoked';
      else if (m === '@cert-authority') marker = 'cert-authority';
      else return; // an unknown marker: ssh skips the line too
    }
    const [hosts, keyType, b64] = fields;
    if (!hosts || !keyType || !b64) return;
    const key = Buffer.from(b64, 'base64');
    if (key.length === 0) return;
    out.push({ file, line: i + 1, marker, hosts, keyType, key });
  });
  return out;
}

/** The name ssh looks up: `host` on port 22, else `[host]:port`. */
export function knownHostsName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

/** Whether the entry's host field names `name` (a `knownHostsName`). */
export function entryMatches(entry: KnownHostEntry, name: string): boolean {
  if (entry.hosts.startsWith('|1|')) return hashedMatches(entry.hosts, name);
  return sshPatternListMatches([entry.hosts], name);
}

/** `|1|salt|hash`: hash = HMAC-SHA1 of the name, keyed with the salt (both base64). */
function hashedMatches(field: string, name: string): boolean {
  const [, , salt, hash] = field.split('|');
  if (!salt || !hash) return false;
  const mac = createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest('base64');
  return mac === hash;
}

/** Check the key a server presented for `name` against the entries of every known_hosts file. */
export function checkHostKey(entries: readonly KnownHostEntry[], name: string, key: Buffer): HostKeyVerdict {
  const mine = entries.filter((e) => entryMatches(e, name));
  const revoked = mine.find((e) => e.marker === 'revoked' && e.key.equals(key));
  if (revoked) return { status: 'revoked', entry: revoked };
  // Certificate authorities sign host certificates, which xpr does not use: ignore those lines.
  const plain = mine.filter((e) => e.marker === undefined);
  const same = plain.find((e) => e.key.equals(key));
  if (same) return { status: 'ok', entry: same };
  const type = keyTypeOf(key);
  const changed = plain.find((e) => keyTypeOf(e.key) === type);
  if (changed) return { status: 'changed', entry: changed };
  return { status: 'unknown', otherTypes: plain };
}

/** The key type named inside an SSH public key blob (its first length-prefixed string). */
export function keyTypeOf(key: Buffer): string {
  if (key.length < 4) return '';
  const n = key.readUInt32BE(0);
  return key.subarray(4, 4 + n).toString('latin1');
}

/** `SHA256:<base64 without padding>`, as ssh and ssh-keygen -l print it. */
export function fingerprint(key: Buffer): string {
  return `SHA256:${createHash('sha256').update(key).digest('base64').replace(/=+$/, '')}`;
}

/** A line to append to known_hosts for this key. */
export function knownHostsLine(name: string, key: Buffer): string {
  return `${name} ${keyTypeOf(key)} ${key.toString('base64')}`;
}

/** The host key algorithms to offer first so the server shows a key we can check (as ssh does). */
export function preferredKeyTypes(entries: readonly KnownHostEntry[], name: string): string[] {
  const out: string[] = [];
  for (const e of entries) {
    if (e.marker !== undefined || !entryMatches(e, name)) continue;
    const t = keyTypeOf(e.key);
    const algos = t === 'ssh-rsa' ? ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'] : [t];
    for (const a of algos) if (!out.includes(a)) out.push(a);
  }
  return out;
}

/** Where the server is and how ssh would be told to accept its key; for messages. */
export interface HostKeyContext {
  /** Host as the user wrote it (system host or alias). */
  host: string;
  hostName: string;
  port: number;
  /** The known_hosts files consulted, user files first. */
  files: readonly string[];
  /** The only ssh_config file read (XPR_SSH_CONFIG), without which `host` may mean nothing to ssh. */
  configFile?: string | undefined;
}

/** The `ssh` command that reaches `host` as xpr does: with `-F FILE` when xpr reads only that config. */
export function sshCommand(host: string, configFile: string | undefined): string {
  return `ssh ${configFile ? `-F ${shWord(configFile)} ` : ''}${shWord(host)}`;
}

/** The error for a key that is not accepted; says what to check and the command that fixes it. */
export function hostKeyError(verdict: Exclude<HostKeyVerdict, { status: 'ok' }>, key: Buffer, ctx: HostKeyContext): UnreachableError {
  const where = `${ctx.hostName}${ctx.port === 22 ? '' : ` port ${ctx.port}`}`;
  const fp = `${keyTypeOf(key)} ${fingerprint(key)}`;
  const userFile = ctx.files[0] ?? '~/.ssh/known_hosts';
  const name = knownHostsName(ctx.hostName, ctx.port);
  if (verdict.status === 'unknown') {
    const also = verdict.otherTypes.length
      ? ` (keys of other types are known: ${verdict.otherTypes.map((e) => `${e.keyType} at ${e.file}:${e.line}`).join(', ')})`
      : '';
    const scan = `ssh-keyscan${ctx.port === 22 ? '' : ` -p ${ctx.port}`} ${shWord(ctx.hostName)} >> ${shWord(userFile)}`;
    return new UnreachableError(ctx.host,
      `Host key of ${ctx.host} (${where}) is not known, so xpr refuses to connect: ${fp}${also}`,
      { hint: `Check the fingerprint with the site, then accept it with: ${sshCommand(ctx.host, ctx.configFile)} (answer yes), or: ${scan}` });
  }
  if (verdict.status === 'changed') {
    const { file, line } = verdict.entry;
    return new UnreachableError(ctx.host,
      `Host key of ${ctx.host} (${where}) has CHANGED since it was recorded at ${file}:${line}; it is now ${fp}. ` +
      'This may be an attack, or the host was reinstalled.',
      { hint: `If the site confirms the new key, remove the old one with: ssh-keygen -f ${shWord(file)} -R ${shWord(name)} and connect again with ${sshCommand(ctx.host, ctx.configFile)}` });
  }
  const { file, line } = verdict.entry;
  return new UnreachableError(ctx.host,
    `Host key of ${ctx.host} (${where}) is marked @revoked at ${file}:${line}: ${fp}`,
    { hint: 'A revoked key is never accepted; ask the site for the host\'s current key.' });
}
