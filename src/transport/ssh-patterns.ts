// OpenSSH's host patterns (ssh_config(5) PATTERNS, the host field of known_hosts): `*` and `?` are the
// only wildcards and `*` crosses dots; in a comma-separated list a leading `!` excludes; case is
// ignored. Matching is picomatch's, with every other character made literal so brackets
// (`[host]:port`), braces and parens mean themselves. Unlike OpenSSH, `?` and `*` never match `/` or
// a newline, which no host or user name has.
import picomatch from 'picomatch';

const OPTIONS: picomatch.PicomatchOptions = {
  bash: true, dot: true, nocase: true, nobrace: true, nobracket: true, noextglob: true, noglobstar: true, nonegate: true,
};

// Compiled once per pattern: a known_hosts file is matched entry by entry on every connection.
const matchers = new Map<string, picomatch.Matcher>();

function patternMatches(pattern: string, value: string): boolean {
  let isMatch = matchers.get(pattern);
  if (isMatch === undefined) {
    isMatch = picomatch(pattern.replace(/[^\w*?]/g, '\\$&'), OPTIONS);
    matchers.set(pattern, isMatch);
  }
  return isMatch(value);
}

/**
 * Whether comma-separated pattern lists (one or several words) match `value`: some positive pattern
 * matches and no `!` pattern does.
 */
export function sshPatternListMatches(lists: readonly string[], value: string): boolean {
  let matched = false;
  for (const list of lists) {
    for (const pat of list.split(',')) {
      if (!pat || pat === '!') continue;
      if (pat.startsWith('!')) {
        if (patternMatches(pat.slice(1), value)) return false;
      } else if (patternMatches(pat, value)) matched = true;
    }
  }
  return matched;
}
