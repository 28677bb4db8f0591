// OpenSSH host patterns: only `*` and `?` are wildcards, `!` excludes, case is ignored.
import { describe, expect, it } from 'vitest';
import { sshPatternListMatches } from '../../src/transport/ssh-patterns.js';

describe('sshPatternListMatches', () => {
  it('has `*` cross dots and `?` match one character, ignoring case', () => {
    expect(sshPatternListMatches(['*.example.org'], 'Login1.Cluster.EXAMPLE.org')).toBe(true);
    expect(sshPatternListMatches(['node?'], 'node7')).toBe(true);
    expect(sshPatternListMatches(['node?'], 'node17')).toBe(false);
    expect(sshPatternListMatches(['*'], '.hidden')).toBe(true);
  });

  it('takes every other character literally: brackets, braces, parens, dots', () => {
    expect(sshPatternListMatches(['[127.0.0.1]:2222'], '[127.0.0.1]:2222')).toBe(true);
    expect(sshPatternListMatches(['[127.0.0.1]:*'], '[127.0.0.1]:22')).toBe(true);
    expect(sshPatternListMatches(['[ab]'], 'a')).toBe(false);
    expect(sshPatternListMatches(['{a,b}'], 'a')).toBe(false);
    expect(sshPatternListMatches(['a(b|c)'], 'ab')).toBe(false);
    expect(sshPatternListMatches(['a.b'], 'axb')).toBe(false);
    expect(sshPatternListMatches(['+(a)'], '+(a)')).toBe(true);
  });

  it('needs one positive match and no negated one, over commas and words', () => {
    expect(sshPatternListMatches(['node*,!node9'], 'node1')).toBe(true);
    expect(sshPatternListMatches(['node*,!node9'], 'node9')).toBe(false);
    expect(sshPatternListMatches(['!node9'], 'node1')).toBe(false);
    expect(sshPatternListMatches(['big*', 'huge*'], 'huge2')).toBe(true);
    expect(sshPatternListMatches(['a,,!', 'b'], 'b')).toBe(true);
  });
});
