// Files move as one tar stream per call, over whatever carries a command's stdin/stdout (an ssh2
// exec channel or an `ssh` child process). Locally the `tar` package packs and unpacks, so no shell
// tar is needed here; remotely plain POSIX `tar` does. Every name and dir reaching the remote shell
// is quoted; only the glob characters of download patterns are left for the remote shell to expand.
import fs from 'node:fs';
import path from 'node:path';
import { create as tarCreate, extract as tarExtract } from 'tar';
import { crashPoint } from '../util/crash-point.js';
import { shQuote } from '../util/shell.js';

/** Remote command that unpacks a tar stream from stdin into `remoteDir`, creating it. */
export function uploadCommand(remoteDir: string): string {
  const dir = shQuote(remoteDir);
  // -o: files belong to the remote user, not to the local uid recorded in the archive.
  return `mkdir -p -- ${dir} && tar -C ${dir} -xof -`;
}

/**
 * Remote command that writes a tar stream of those `names` (globs expanded by the remote shell)
 * that exist in `remoteDir`; nothing at all when none do.
 */
export function downloadCommand(remoteDir: string, names: readonly string[]): string {
  const words = names.map(globWord).join(' ');
  return [
    `cd ${shQuote(remoteDir)} 2>/dev/null || exit 0`,
    'set --',
    `for f in ${words}; do if [ -e "$f" ] || [ -L "$f" ]; then set -- "$@" "$f"; fi; done`,
    '[ $# -eq 0 ] || exec tar -cf - -- "$@"',
  ].join('; ');
}

/**
 * One shell word for a download pattern: `*`, `?` and simple `[...]` classes stay active, all
 * else is quoted. A class with anything but letters, digits and `.,_+-` is taken literally, since
 * an unquoted `$(` inside it would run.
 */
export function globWord(name: string): string {
  const parts: string[] = [];
  let literal = '';
  const flush = () => {
    if (literal) parts.push(shQuote(literal));
    literal = '';
  };
  for (let i = 0; i < name.length; i++) {
    const c = name[i]!;
    if (c === '*' || c === '?') {
      flush();
      parts.push(c);
      continue;
    }
    if (c === '[') {
      const m = /^\[!?[\w.,+-]+\]/.exec(name.slice(i));
      if (m) {
        flush();
        parts.push(m[0]);
        i += m[0].length - 1;
        continue;
      }
    }
    literal += c;
  }
  flush();
  return parts.join('') || "''";
}

/** The names that exist under `localDir` (missing ones are skipped, as the local transport does). */
export function existingNames(localDir: string, names: readonly string[]): string[] {
  return names.filter((n) => {
    try {
      fs.lstatSync(path.join(localDir, n));
      return true;
    } catch {
      return false;
    }
  });
}

/**
 * Pack `names` under `localDir` and write the archive to `sink`, ending it. Resolves once all of
 * it has been handed to the sink; rejects if reading a file fails. `progress` is called for each
 * chunk the sink takes (it stops being called while the far end reads nothing).
 */
export function sendTar(localDir: string, names: readonly string[], sink: NodeJS.WritableStream,
  progress?: () => void): Promise<void> {
  return new Promise((resolve, reject) => {
    // portable: no local user/group names or uids in the archive.
    const pack = tarCreate({ cwd: localDir, portable: true }, [...names]);
    let ended = false;
    pack.on('error', reject);
    pack.on('end', () => {
      ended = true;
      resolve();
    });
    // If the far end goes away (a dropped connection), stop reading files instead of stalling.
    sink.once('close', () => {
      if (ended) return;
      pack.destroy();
      reject(new Error('the tar stream was cut off'));
    });
    pack.pipe(sink);
    // after pipe: a minipass stream flows on its first listener
    pack.on('data', () => {
      progress?.();
      crashPoint('upload');
    });
  });
}

/**
 * Unpack the tar stream read from `source` into `localDir`. An empty stream (no names existed) is
 * fine and creates nothing but the dir. Paths are kept inside `localDir` (no `..`, no absolute).
 */
export function receiveTar(source: NodeJS.ReadableStream, localDir: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let unpack: ReturnType<typeof openUnpack> | undefined;
    let failed = false;
    const fail = (e: unknown) => {
      if (failed) return;
      failed = true;
      reject(e instanceof Error ? e : new Error(String(e)));
    };
    source.on('data', (chunk: Buffer) => {
      if (failed) return;
      if (!unpack) {
        unpack = openUnpack(localDir);
        unpack.on('error', fail);
        unpack.on('drain', () => source.resume());
      }
      if (!unpack.write(chunk)) source.pause();
      crashPoint('fetch');
    });
    source.on('error', fail);
    source.on('end', () => {
      if (failed) return;
      if (!unpack) {
        fs.mkdirSync(localDir, { recursive: true });
        resolve();
        return;
      }
      unpack.on('finish', () => { if (!failed) resolve(); });
      unpack.end();
    });
  });
}

function openUnpack(localDir: string) {
  fs.mkdirSync(localDir, { recursive: true });
  // strict: a file that cannot be written is an error, not a warning nobody reads.
  return tarExtract({ cwd: localDir, strict: true });
}
