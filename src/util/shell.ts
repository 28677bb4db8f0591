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
