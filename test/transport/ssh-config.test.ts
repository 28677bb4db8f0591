// ssh_config reading: Host patterns, first value wins, Include, tokens, Match, ProxyJump hops.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadSshConfig, parseJumpHop, parseSshConfig, resolveSshHost, splitArgs } from '../../src/transport/ssh-config.js';

const ctx = { localUser: 'me', home: '/home/me', localHost: 'laptop', authSock: '/tmp/agent.sock' };
const resolve = (text: string, host: string) => resolveSshHost(parseSshConfig(text, 'cfg'), host, ctx);

describe('ssh_config', () => {
  it('takes the first value of each option from every matching block', () => {
    const s = resolve([
      'Host cluster',
      '  HostName login.example.org',
      '  User alice',
      'Host c*',
      '  User bob',
      '  Port 2222',
      '  IdentityFile ~/.ssh/id_cluster',
      'Host *',
      '  Port 22',
      '  IdentityFile ~/.ssh/id_%h_%r_%p',
      '  ServerAliveInterval 30',
    ].join('\n'), 'cluster');
    expect(s.hostName).toBe('login.example.org');
    expect(s.user).toBe('alice');
    expect(s.port).toBe(2222);
    // IdentityFile accumulates, and tokens use the final host name, user and port.
    expect(s.identityFiles).toEqual(['/home/me/.ssh/id_cluster', '/home/me/.ssh/id_login.example.org_alice_2222']);
    expect(s.serverAliveIntervalMs).toBe(30_000);
  });

  it('matches ?, *, negation and comma lists, case-insensitively', () => {
    const text = [
      'Host node? !node9',
      '  User single',
      'Host big*,huge*',
      '  User many',
      'Host *',
      '  User fallback',
    ].join('\n');
    expect(resolve(text, 'node1').user).toBe('single');
    expect(resolve(text, 'node9').user).toBe('fallback');
    expect(resolve(text, 'node10').user).toBe('fallback');
    expect(resolve(text, 'HUGE-box').user).toBe('many');
  });

  it('lets user@host override User, and fills defaults', () => {
    const s = resolve('Host x\n  User config-user\n', 'cli-user@x');
    expect(s).toMatchObject({
      alias: 'x', hostName: 'x', user: 'cli-user', port: 22, identityFiles: [], strictHostKeyChecking: 'ask',
      userKnownHostsFiles: ['/home/me/.ssh/known_hosts', '/home/me/.ssh/known_hosts2'], identityAgent: '/tmp/agent.sock',
      proxyJump: [], proxyCommand: undefined,
    });
  });

  it('reads Key=value, quotes, comments, StrictHostKeyChecking, UserKnownHostsFile lists, ProxyJump', () => {
    const s = resolve([
      '# comment',
      'Host=gw',
      '  HostName = %h.example.org',
      '  IdentityFile "/keys/my key"',
      '  StrictHostKeyChecking accept-new',
      '  UserKnownHostsFile ~/kh1 /etc/kh2',
      '  ProxyJump jumper@bastion:2200,other',
      '  IdentityAgent none',
      '  BatchMode yes',
    ].join('\n'), 'gw');
    expect(s.hostName).toBe('gw.example.org');
    expect(s.identityFiles).toEqual(['/keys/my key']);
    expect(s.strictHostKeyChecking).toBe('accept-new');
    expect(s.userKnownHostsFiles).toEqual(['/home/me/kh1', '/etc/kh2']);
    expect(s.proxyJump).toEqual(['jumper@bastion:2200', 'other']);
    expect(s.identityAgent).toBeUndefined();
    expect(s.batchMode).toBe(true);
    expect(splitArgs(`a "b c" 'd e' f\\ g # tail`)).toEqual(['a', 'b c', 'd e', 'f g']);
  });

  it('applies Match all / host / originalhost and skips criteria it cannot judge', () => {
    const text = [
      'Host alias',
      '  HostName real.example.org',
      'Match exec "true"',
      '  User from-exec',
      'Match host *.example.org',
      '  Port 2022',
      'Match originalhost alias',
      '  User from-match',
      'Match all',
      '  ConnectTimeout 7',
    ].join('\n');
    const s = resolve(text, 'alias');
    expect(s.user).toBe('from-match');
    expect(s.port).toBe(2022);
    expect(s.connectTimeoutMs).toBe(7000);
  });

  it('parses ProxyJump hops', () => {
    expect(parseJumpHop('bastion')).toEqual({ user: undefined, host: 'bastion', port: undefined });
    expect(parseJumpHop('u@b:2200')).toEqual({ user: 'u', host: 'b', port: 2200 });
    expect(parseJumpHop('ssh://u@[::1]:22')).toEqual({ user: 'u', host: '::1', port: 22 });
  });

  describe('Include', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xpr-sshcfg-'));
    afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

    it('reads included files in place, relative to the config dir, with globs', () => {
      fs.mkdirSync(path.join(dir, 'conf.d'));
      fs.writeFileSync(path.join(dir, 'conf.d', '10-a.conf'), 'Host a\n  User from-a\n');
      fs.writeFileSync(path.join(dir, 'conf.d', '20-b.conf'), 'Host b\n  User from-b\nHost *\n  Port 2000\n');
      fs.writeFileSync(path.join(dir, 'config'), 'Include conf.d/*.conf\nHost *\n  User default\n  Port 22\n');
      const nodes = loadSshConfig(path.join(dir, 'config'), { home: '/home/me', includeBase: dir });
      expect(resolveSshHost(nodes, 'a', ctx)).toMatchObject({ user: 'from-a', port: 2000 });
      expect(resolveSshHost(nodes, 'b', ctx)).toMatchObject({ user: 'from-b', port: 2000 });
      expect(resolveSshHost(nodes, 'c', ctx)).toMatchObject({ user: 'default', port: 2000 });
      expect(loadSshConfig(path.join(dir, 'absent'), { home: '/home/me' })).toEqual([]);
    });

    it('applies an Include inside a Host block only to that host', () => {
      fs.writeFileSync(path.join(dir, 'inner'), 'User inner-user\n');
      fs.writeFileSync(path.join(dir, 'outer'), `Host only\n  Include ${path.join(dir, 'inner')}\nHost *\n  User other\n`);
      const nodes = loadSshConfig(path.join(dir, 'outer'), { home: '/home/me', includeBase: dir });
      expect(resolveSshHost(nodes, 'only', ctx).user).toBe('inner-user');
      expect(resolveSshHost(nodes, 'else', ctx).user).toBe('other');
    });
  });
});
