// A real OpenSSH sshd for tests: started on 127.0.0.1 on a free high port, with a generated host
// key, user key, authorized keys, known_hosts and an ssh_config, all in a fresh temp dir. It runs
// as the current user and logs to a file in that dir. Run as root, it also lets in the test
// cluster's own users (scripts/test-cluster/create-users.sh): other accounts with their own homes
// and login shells, which is how a user's cluster looks from the driver.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, openSync, closeSync, readFileSync, readdirSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const SSHD_BIN = '/usr/sbin/sshd';
/** Host alias defined in the generated ssh_config: the current user, on this machine. */
export const SSH_HOST_ALIAS = 'xpr-test';

/** A cluster account other than the driver's; its name is also its host alias in the ssh_config. */
export interface ClusterUser {
  name: string;
  /** Login shell, which runs every command sent over SSH. */
  shell: string;
  home: string;
}

/** The test cluster's accounts and the login shell each one has (create-users.sh makes them). */
export const CLUSTER_USERS = [
  { name: 'xpr-bash', shellName: 'bash' },
  { name: 'xpr-tcsh', shellName: 'tcsh' },
] as const;

const CREATE_USERS_SCRIPT = fileURLToPath(new URL('../../scripts/test-cluster/create-users.sh', import.meta.url));

export interface SshdOptions {
  /** Port to listen on; a free high port when omitted. */
  port?: number;
  /** Milliseconds to wait for the port to accept connections (default 10 000). */
  readyTimeoutMs?: number;
  /** sshd_config lines that win over the defaults with the same keyword (e.g. `PasswordAuthentication yes`). */
  sshdConfig?: string[];
}

export interface SshdHandle {
  port: number;
  host: '127.0.0.1';
  /** The user sshd runs as and lets in (the current user). */
  user: string;
  /** Other accounts it lets in with the same key (only when run as root; see `clusterUsers()`). */
  clusterUsers: ClusterUser[];
  /** The temp dir holding keys, configs, pid file and log. */
  dir: string;
  /** Private user key (ed25519, no passphrase); the public half is in authorized_keys. */
  identityFile: string;
  /** known_hosts with one line for `[127.0.0.1]:<port>`. */
  knownHostsFile: string;
  /**
   * ssh_config with `Host xpr-test` (HostName, Port, User, IdentityFile, UserKnownHostsFile,
   * StrictHostKeyChecking yes), and the same for each cluster user under its own name as alias.
   */
  sshConfigFile: string;
  /** `SHA256:...` fingerprint of the host key, as `ssh-keygen -lf` prints it. */
  hostKeyFingerprint: string;
  /** The host public key line (`ssh-ed25519 AAAA...`). */
  hostPublicKey: string;
  /** sshd's own log (`LogLevel VERBOSE`), appended to across restarts. */
  logFile: string;
  /** Number of successful logins so far ('Accepted publickey' lines in the log). */
  connectionsAccepted(): number;
  /** Stop sshd (dropping open sessions) and start it again on the same port with the same keys. */
  restart(): Promise<void>;
  /** Stop sshd and its session processes, and remove the temp dir. */
  stop(): Promise<void>;
  /**
   * Send `sig` to the sshd listener and all its session processes: SIGSTOP makes a host that
   * still accepts TCP but never answers (a hung sshd), SIGCONT lets it go on.
   */
  signal(sig: NodeJS.Signals): void;
}

function which(cmd: string): string | undefined {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  const out = r.stdout.trim();
  return r.status === 0 && out ? out : undefined;
}

/** Why sshd cannot run here, or undefined when it can. */
export function sshdAvailable(): string | undefined {
  if (process.platform !== 'linux') return `sshd tests need Linux (this is ${process.platform})`;
  if (!existsSync(SSHD_BIN)) return `${SSHD_BIN} not found (install openssh-server: scripts/test-cluster/install.sh)`;
  if (!which('ssh-keygen')) return 'ssh-keygen not found (install openssh-client)';
  const isRoot = process.getuid?.() === 0;
  if (isRoot) {
    // As root, sshd insists on its privilege-separation user and directory.
    const pw = spawnSync('getent', ['passwd', 'sshd'], { encoding: 'utf8' });
    if (pw.status !== 0) return "privilege-separation user 'sshd' is missing (reinstall openssh-server)";
    try {
      mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
    } catch (e) {
      return `cannot create /run/sshd: ${(e as Error).message}`;
    }
  }
  const t = spawnSync(SSHD_BIN, ['-V'], { encoding: 'utf8' });
  if (t.error) return `${SSHD_BIN} cannot be run: ${t.error.message}`;
  return undefined;
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => (port ? resolve(port) : reject(new Error('no port'))));
    });
  });
}

function run(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.error) throw new Error(`${cmd}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr.trim()}`);
  return r.stdout;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Resolves true once something on 127.0.0.1:port sends an SSH banner. */
function probeBanner(port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect({ host: '127.0.0.1', port });
    let done = false;
    const finish = (ok: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    let buf = '';
    sock.setEncoding('latin1');
    sock.on('data', (d: string) => {
      buf += d;
      if (buf.startsWith('SSH-')) finish(true);
      else if (buf.length > 8) finish(false);
    });
    sock.on('error', () => finish(false));
    sock.on('close', () => finish(false));
  });
}

function tail(file: string, lines = 15): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** Pids of all descendants of `root` (Linux /proc). */
function descendants(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      // Field 4 (ppid) follows the ')' that closes the command name.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const list = children.get(ppid) ?? [];
      list.push(Number(name));
      children.set(ppid, list);
    } catch {
      // process went away
    }
  }
  const out: number[] = [];
  const stack = [root];
  while (stack.length) {
    const p = stack.pop()!;
    for (const c of children.get(p) ?? []) {
      out.push(c);
      stack.push(c);
    }
  }
  return out;
}

/** Pids whose command line mentions `needle` (this sshd's config path: its own processes). */
function processesMentioning(needle: string): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${name}/cmdline`, 'utf8').includes(needle)) out.push(Number(name));
    } catch {
      // process went away
    }
  }
  return out;
}

/** True while `pid` runs (a zombie waiting to be reaped counts as gone). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

function passwdEntry(name: string): { shell: string; home: string } | undefined {
  const r = spawnSync('getent', ['passwd', name], { encoding: 'utf8' });
  if (r.status !== 0) return undefined;
  const f = r.stdout.trim().split(':');
  return { home: f[5] ?? '', shell: f[6] ?? '' };
}

/**
 * The cluster accounts, created when missing (as root), or why there are none: logging in as
 * another user needs an sshd run by root.
 */
export function clusterUsers(): ClusterUser[] | string {
  if (process.getuid?.() !== 0) return 'logging in as the test cluster\'s users needs root (sshd must switch users)';
  const missing = CLUSTER_USERS.filter((u) => !passwdEntry(u.name));
  if (missing.length) {
    const r = spawnSync('bash', [CREATE_USERS_SCRIPT], { encoding: 'utf8' });
    if (r.status !== 0) return `cannot create the test cluster's users: ${(r.stderr || r.stdout).trim()}`;
  }
  const users: ClusterUser[] = [];
  for (const u of CLUSTER_USERS) {
    const pw = passwdEntry(u.name);
    if (!pw) return `user ${u.name} is missing (run scripts/test-cluster/create-users.sh as root)`;
    if (!pw.shell.endsWith(`/${u.shellName}`)) return `user ${u.name} has login shell ${pw.shell}, not ${u.shellName} (run create-users.sh)`;
    users.push({ name: u.name, shell: pw.shell, home: pw.home });
  }
  return users;
}

export async function startSshd(opts: SshdOptions = {}): Promise<SshdHandle> {
  const reason = sshdAvailable();
  if (reason) throw new Error(`sshd unavailable: ${reason}`);

  const dir = mkdtempSync(join(tmpdir(), 'xpr-sshd-'));
  // Others may pass through (not list) the dir: sshd reads a user's authorized keys as that user.
  chmodSync(dir, 0o711);
  const user = userInfo().username;
  const others = clusterUsers();
  const users = typeof others === 'string' ? [] : others;
  const hostKey = join(dir, 'ssh_host_ed25519_key');
  const identityFile = join(dir, 'id_ed25519');
  const keysDir = join(dir, 'authorized_keys.d');
  const knownHostsFile = join(dir, 'known_hosts');
  const sshdConfig = join(dir, 'sshd_config');
  const sshConfigFile = join(dir, 'ssh_config');
  const pidFile = join(dir, 'sshd.pid');
  const logFile = join(dir, 'sshd.log');

  run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'xpr-test-host', '-f', hostKey]);
  run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `xpr-test-user@${user}`, '-f', identityFile]);
  mkdirSync(keysDir, { mode: 0o755 });
  for (const name of [user, ...users.map((u) => u.name)]) {
    writeFileSync(join(keysDir, name), readFileSync(`${identityFile}.pub`, 'utf8'), { mode: 0o644 });
  }
  const [keyType, keyData] = readFileSync(`${hostKey}.pub`, 'utf8').trim().split(/\s+/);
  const hostPublicKey = `${keyType} ${keyData}`;
  const fp = run('ssh-keygen', ['-l', '-E', 'sha256', '-f', `${hostKey}.pub`]).split(/\s+/)[1] ?? '';

  let port = opts.port ?? (await freePort());
  const readyTimeoutMs = opts.readyTimeoutMs ?? 10_000;

  const writeConfigs = () => {
    writeFileSync(
      sshdConfig,
      [
        // sshd takes the first value of a keyword: these win over the defaults below.
        ...(opts.sshdConfig ?? []),
        `Port ${port}`,
        'ListenAddress 127.0.0.1',
        `HostKey ${hostKey}`,
        `PidFile ${pidFile}`,
        `AuthorizedKeysFile ${keysDir}/%u`,
        'PubkeyAuthentication yes',
        'PasswordAuthentication no',
        'KbdInteractiveAuthentication no',
        'PermitRootLogin prohibit-password',
        'UsePAM no',
        'StrictModes no',
        'LogLevel VERBOSE',
        'MaxSessions 10',
        'MaxStartups 50:30:100',
        'PrintMotd no',
        'PrintLastLog no',
        'X11Forwarding no',
        'Subsystem sftp internal-sftp',
        '',
      ].join('\n'),
    );
    writeFileSync(knownHostsFile, `[127.0.0.1]:${port} ${hostPublicKey}\n`);
    const hostBlock = (alias: string, login: string) => [
      `Host ${alias}`,
      '  HostName 127.0.0.1',
      `  Port ${port}`,
      `  User ${login}`,
      `  IdentityFile ${identityFile}`,
      '  IdentitiesOnly yes',
      `  UserKnownHostsFile ${knownHostsFile}`,
      '  GlobalKnownHostsFile /dev/null',
      '  StrictHostKeyChecking yes',
      '  BatchMode yes',
      '  ConnectTimeout 10',
    ];
    writeFileSync(sshConfigFile, [
      ...hostBlock(SSH_HOST_ALIAS, user),
      ...users.flatMap((u) => hostBlock(u.name, u.name)),
      '',
    ].join('\n'));
  };

  let child: ChildProcess | undefined;

  const launch = async (): Promise<void> => {
    const fd = openSync(logFile, 'a');
    let proc: ChildProcess;
    try {
      proc = spawn(SSHD_BIN, ['-D', '-e', '-f', sshdConfig], { stdio: ['ignore', fd, fd] });
    } finally {
      closeSync(fd);
    }
    let exited: string | undefined;
    proc.on('exit', (code, signal) => {
      exited = `exited with ${signal ?? code}`;
    });
    proc.on('error', (e) => {
      exited = `failed to start: ${e.message}`;
    });
    child = proc;
    const deadline = Date.now() + readyTimeoutMs;
    while (Date.now() < deadline) {
      if (exited) break;
      if (await probeBanner(port, 1000)) return;
      await sleep(50);
    }
    if (!exited) proc.kill('SIGKILL');
    throw new Error(
      `sshd on 127.0.0.1:${port} ${exited ?? `did not accept connections within ${readyTimeoutMs} ms`}; log ${logFile}:\n${tail(logFile)}`,
    );
  };

  const halt = async (): Promise<void> => {
    const proc = child;
    child = undefined;
    if (!proc || proc.pid === undefined) return;
    const pid = proc.pid;
    // Session processes are sshd's children; end them too so a restart drops connections.
    const sessions = alive(pid) ? descendants(pid) : [];
    if (proc.exitCode === null && proc.signalCode === null) {
      const gone = new Promise<void>((r) => proc.once('exit', () => r()));
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
      await gone;
      clearTimeout(t);
    }
    // Plus any connection child forked just before the listener died: until it re-executes and
    // renames itself it still carries the config path on its command line.
    for (const p of processesMentioning(sshdConfig)) if (!sessions.includes(p)) sessions.push(p);
    for (const s of sessions) {
      try {
        process.kill(s, 'SIGTERM');
      } catch {
        // already gone
      }
    }
    for (let i = 0; i < 50 && sessions.some(alive); i++) await sleep(20);
    for (const s of sessions.filter(alive)) {
      try {
        process.kill(s, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  };

  // A port found free can be taken before sshd binds it: retry with another one (only when the
  // caller did not ask for a specific port).
  for (let attempt = 1; ; attempt++) {
    writeConfigs();
    try {
      await launch();
      break;
    } catch (e) {
      await halt();
      if (opts.port !== undefined || attempt >= 3 || !/Bind to port|Address already in use|exited/.test(String(e))) {
        rmSync(dir, { recursive: true, force: true });
        throw e;
      }
      port = await freePort();
    }
  }

  return {
    get port() {
      return port;
    },
    host: '127.0.0.1',
    user,
    clusterUsers: users,
    dir,
    identityFile,
    knownHostsFile,
    sshConfigFile,
    hostKeyFingerprint: fp,
    hostPublicKey,
    logFile,
    connectionsAccepted() {
      try {
        return (readFileSync(logFile, 'utf8').match(/^.*Accepted (publickey|password|keyboard-interactive)\b.*$/gm) ?? []).length;
      } catch {
        return 0;
      }
    },
    async restart() {
      await halt();
      await launch();
    },
    async stop() {
      await halt();
      rmSync(dir, { recursive: true, force: true });
    },
    signal(sig: NodeJS.Signals) {
      const pid = child?.pid;
      if (pid === undefined) return;
      // The listener first, so that it forks no new session while its children are signalled.
      for (const p of [pid, ...descendants(pid)]) {
        try {
          process.kill(p, sig);
        } catch {
          // already gone
        }
      }
    },
  };
}
