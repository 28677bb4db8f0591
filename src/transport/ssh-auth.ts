// Logging in to an SSH server: which methods are offered and in what order (none, ssh-agent, key
// files, then keyboard-interactive and password when there is a terminal), key passphrases, and
// the message that says why a login failed. Passphrases and keyboard-interactive answers are asked
// once per process, so a reconnect (or a second host with the same key) does not ask again.
// Knows nothing of connections: the connection hands `handler` to ssh2 and asks `failure` for its error.
import fs from 'node:fs';
import path from 'node:path';
import ssh2 from 'ssh2';
import type { AnyAuthMethod, AuthenticationType, AuthHandlerMiddleware, IdentityCallback, ParsedKey, Prompt } from 'ssh2';
import { UnreachableError } from '../errors.js';
import { shWord } from '../util/shell.js';
import { sshCommand } from './known-hosts.js';
import { ask, canPrompt } from './prompt.js';
import type { SshTarget } from './ssh-target.js';

const { OpenSSHAgent, utils } = ssh2;

const DEFAULT_KEYS = ['id_ed25519', 'id_ecdsa', 'id_rsa'];

/** Key passphrases and keyboard-interactive answers, asked once per process. */
const passphrases = new Map<string, string>();
const kbdAnswers = new Map<string, Map<string, string>>();

/** Tries, in order: none, ssh-agent, the key files, then keyboard-interactive and password on a terminal. */
export class Authenticator {
  private readonly steps: Array<'none' | 'agent' | 'kbd' | 'password' | { file: string; configured: boolean }>;
  /** Methods offered to the server, in order, with what it said (known once it asks for the next). */
  private readonly attempts: Attempt[] = [];
  /** Why a key file was not offered (unreadable, encrypted, wrong passphrase). */
  private readonly notes: string[] = [];
  /** Methods the server would take but xpr could not answer (no terminal). */
  private readonly unanswered: string[] = [];
  /** The methods the server last said it accepts. */
  private accepts: AuthenticationType[] | undefined;
  private kbdRounds = 0;

  constructor(private readonly target: SshTarget) {
    const s = target.settings;
    const files = s.identityFiles.length
      ? s.identityFiles.map((file) => ({ file, configured: true }))
      : DEFAULT_KEYS.map((k) => ({ file: path.join(target.home, '.ssh', k), configured: false }));
    this.steps = ['none', ...(s.identityAgent ? ['agent' as const] : []), ...files,
      'kbd', 'kbd', 'kbd', 'password', 'password'];
  }

  // @types/ssh2 leaves out `false`, which ssh2 takes as "no more methods to try".
  readonly handler = ((left: AuthenticationType[] | null, partial: boolean, next: (m: AnyAuthMethod | false) => void) => {
    // Asked again: the last method offered did not log in (or, with `partial`, was not enough alone).
    const last = this.attempts.at(-1);
    if (last && !last.outcome) last.outcome = partial ? 'accepted, more needed' : 'refused';
    if (left) this.accepts = left;
    this.next(left).then(next, (e: unknown) => {
      this.notes.push((e as Error).message);
      next(false);
    });
  }) as unknown as AuthHandlerMiddleware;

  /** The error for a failed login, or undefined when `err` is not about authentication. */
  failure(err: Error): UnreachableError | undefined {
    if ((err as { level?: string }).level !== 'client-authentication') return undefined;
    const { label, settings: s } = this.target;
    const last = this.attempts.at(-1);
    if (last && !last.outcome) last.outcome = 'refused';
    const offered = this.attempts.flatMap((a) => (a.file ? [a.file] : []));
    const lines = [
      `Could not log in to ${label} as ${s.user} (${s.hostName}:${s.port})`,
      `  methods tried: ${this.attempts.map((a) => `${a.method} (${a.outcome ?? 'refused'})`).join(', ') || 'none that xpr could use'}`,
      `  identity files offered: ${offered.join(', ') || 'none'}`,
      ...(this.accepts ? [`  the server accepts: ${this.accepts.join(', ')}`] : []),
    ];
    return new UnreachableError(label, lines.join('\n'), { hint: this.failureHint(), cause: err });
  }

  /**
   * What to do, most likely cause first: a key the server refused is the problem, not the
   * password prompt that could not be shown after it.
   */
  private failureHint(): string {
    const { label, settings: s, configFile } = this.target;
    const check = `Check with: ${sshCommand(label, configFile)} true`;
    const refused = this.attempts.filter((a) => a.file && a.outcome === 'refused').map((a) => a.file!);
    const parts: string[] = [];
    if (refused.length > 0) {
      parts.push(`The server refused ${refused.length === 1 ? 'the key' : 'the keys'} ${refused.join(', ')}: add the public key ` +
        `(${refused[0]}.pub) to ~/.ssh/authorized_keys of ${s.user} on ${s.hostName}, or name a key that is there with ` +
        `IdentityFile in ${configFile ?? '~/.ssh/config'}.`);
    }
    parts.push(...this.notes);
    if (this.unanswered.length > 0) {
      parts.push(refused.length > 0
        ? `(It would also take ${this.unanswered.join(' or ')} answers, which xpr asks for only on a terminal.)`
        : `${label} asks for ${this.unanswered.join(' or ')} answers (a password or one-time code) but xpr has no terminal ` +
          'to ask on: run once from a terminal, use a key or ssh-agent, or set XPR_SSH=system with an open ssh ControlMaster.');
    }
    if (parts.length === 0) {
      parts.push('Put your public key in ~/.ssh/authorized_keys on the host, load it into ssh-agent (ssh-add), ' +
        `or name it with IdentityFile in ${configFile ?? '~/.ssh/config'}.`);
    }
    return `${parts.join(' ')} ${check}`;
  }

  private async next(left: AuthenticationType[] | null): Promise<AnyAuthMethod | false> {
    const username = this.target.settings.user;
    const allows = (m: AuthenticationType) => left === null || left.includes(m);
    for (let step = this.steps.shift(); step !== undefined; step = this.steps.shift()) {
      if (step === 'none') {
        if (left === null) return { type: 'none', username };
      } else if (step === 'agent') {
        if (!allows('publickey')) continue;
        this.attempts.push({ method: 'publickey from ssh-agent' });
        return { type: 'agent', username, agent: this.agent() };
      } else if (step === 'kbd' || step === 'password') {
        const method = step === 'kbd' ? 'keyboard-interactive' : 'password';
        if (left === null || !left.includes(method)) continue;
        if (!this.interactive()) {
          if (!this.unanswered.includes(method)) this.unanswered.push(method);
          continue;
        }
        this.attempts.push({ method });
        return step === 'kbd' ? this.kbdMethod(username) : { type: 'password', username, password: await this.askPassword() };
      } else {
        if (!allows('publickey')) continue;
        const key = await this.loadKey(step.file, step.configured);
        if (!key) continue;
        this.attempts.push({ method: `publickey with key ${step.file}`, file: step.file });
        return { type: 'publickey', username, key };
      }
    }
    return false;
  }

  private interactive(): boolean {
    return canPrompt() && !this.target.settings.batchMode;
  }

  private note(s: string): void {
    if (!this.notes.includes(s)) this.notes.push(s);
  }

  /** With IdentitiesOnly, offer only the agent keys that match the configured key files (as ssh). */
  private agent(): InstanceType<typeof OpenSSHAgent> {
    const s = this.target.settings;
    const sock = s.identityAgent!;
    if (!s.identitiesOnly || s.identityFiles.length === 0) return new OpenSSHAgent(sock);
    const allowed = s.identityFiles.flatMap((f) => {
      try {
        const k = utils.parseKey(fs.readFileSync(`${f}.pub`));
        return k instanceof Error ? [] : [k.getPublicSSH()];
      } catch {
        return [];
      }
    });
    return new (class extends OpenSSHAgent {
      override getIdentities(cb: IdentityCallback<ParsedKey>): void {
        super.getIdentities((err, keys) => cb(err, keys?.filter((k) =>
          'getPublicSSH' in k && allowed.some((a) => a.equals(k.getPublicSSH())))));
      }
    })(sock);
  }

  private async loadKey(file: string, configured: boolean): Promise<ParsedKey | undefined> {
    let data: Buffer;
    try {
      data = fs.readFileSync(file);
    } catch (e) {
      if (configured) this.note(`IdentityFile ${file} cannot be read (${(e as NodeJS.ErrnoException).code}).`);
      return undefined;
    }
    let key = firstKey(utils.parseKey(data));
    if (!(key instanceof Error)) return key;
    if (!/passphrase/i.test(key.message)) {
      this.note(`Key ${file} cannot be used: ${key.message}.`);
      return undefined;
    }
    const cached = passphrases.get(file);
    if (cached !== undefined) key = firstKey(utils.parseKey(data, cached));
    else if (this.interactive()) {
      const pass = await ask(`Enter passphrase for key '${file}': `, false);
      key = firstKey(utils.parseKey(data, pass));
      if (!(key instanceof Error)) passphrases.set(file, pass);
    } else {
      this.note(`Key ${file} is encrypted and xpr has no terminal to ask for its passphrase: load it into ssh-agent with: ssh-add ${shWord(file)}`);
      return undefined;
    }
    if (key instanceof Error) {
      this.note(`Wrong passphrase for key ${file}.`);
      return undefined;
    }
    return key;
  }

  /** Answers are kept per host for the process: a later reconnect tries them first, then asks anew. */
  private kbdMethod(username: string): AnyAuthMethod {
    const s = this.target.settings;
    const id = `${s.user}@${s.hostName}:${s.port}`;
    const round = this.kbdRounds++;
    return {
      type: 'keyboard-interactive',
      username,
      prompt: (name: string, instructions: string, _lang: string, prompts: Prompt[], finish: (answers: string[]) => void) => {
        const cache = kbdAnswers.get(id) ?? new Map<string, string>();
        kbdAnswers.set(id, cache);
        const reuse = round === 0 && prompts.every((p) => cache.has(p.prompt));
        const answer = async (): Promise<string[]> => {
          if (reuse) return prompts.map((p) => cache.get(p.prompt)!);
          if (prompts.length && (name || instructions)) process.stderr.write(`${[name, instructions].filter(Boolean).join('\n')}\n`);
          const out: string[] = [];
          for (const p of prompts) out.push(await ask(`[${this.target.label}] ${p.prompt}`, p.echo ?? false));
          prompts.forEach((p, i) => cache.set(p.prompt, out[i]!));
          return out;
        };
        answer().then(finish, (e: unknown) => {
          this.note((e as Error).message);
          finish([]);
        });
      },
    };
  }

  private async askPassword(): Promise<string> {
    const s = this.target.settings;
    return ask(`${s.user}@${s.hostName}'s password: `, false);
  }
}

/** One authentication method offered to the server. */
interface Attempt {
  /** As a message shows it, e.g. `publickey with key /home/me/.ssh/id_ed25519`. */
  method: string;
  /** The identity file offered, for publickey with a key file. */
  file?: string;
  outcome?: 'refused' | 'accepted, more needed';
}

function firstKey(k: ParsedKey | ParsedKey[] | Error): ParsedKey | Error {
  if (Array.isArray(k)) return k[0] ?? new Error('no key in file');
  return k;
}
