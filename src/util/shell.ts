// POSIX shell quoting. Every path and name that reaches a shell command line goes through here, so
// a job name like `a'; echo x` or a dir with spaces and `$` stays one literal word.

/** Quote `s` as one single-quoted shell word, always. */
export function shQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Quote `s` only when it contains characters a shell would treat specially (for hints users copy). */
export function shWord(s: string): string {
  return /^[\w.,:/=@%+-]+$/.test(s) ? s : shQuote(s);
}

/**
 * The text to send as an SSH command so that bash runs `command`, whatever the user's login shell.
 * sshd hands the text to the login shell (`$SHELL -c TEXT`), and on many clusters that is tcsh,
 * which breaks bash syntax in its own ways: inside single quotes a newline is an error ("Unmatched
 * '") and `!` still does history substitution; fish reads `\\` and `\'` inside them. So the text
 * is `exec bash -c '…'` with nothing inside the quotes that sh, csh/tcsh or fish treats specially.
 * A command with a newline, `!`, a backslash or any byte that is not printable ASCII goes as
 * `exec bash -c 'eval $'\''…'\'''`, each such byte (and `'`) written as a 3-digit octal escape
 * that only bash's `$'…'` decodes; eval keeps the command's stdin and exit status. With exec,
 * bash's exit status or signal reaches sshd as it is, and bash, at the login shell's level, reads
 * ~/.bashrc as a bash started by sshd does (sites define `module` there).
 */
export function bashForAnyShell(command: string): string {
  const plain = /^[\x20-\x7e]*$/.test(command) && !/[!\\]/.test(command);
  if (plain) return `exec bash -c ${shQuote(command)}`;
  let octal = '';
  for (const byte of Buffer.from(command, 'utf8')) {
    const c = String.fromCharCode(byte);
    octal += byte >= 0x20 && byte < 0x7f && !`!\\'`.includes(c) ? c : `\\${byte.toString(8).padStart(3, '0')}`;
  }
  return `exec bash -c ${shQuote(`eval $'${octal}'`)}`;
}
