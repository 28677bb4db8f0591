// known_hosts checking against files written the way OpenSSH writes them (ssh-keygen -H for hashes).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  checkHostKey, fingerprint, hostKeyError, knownHostsName, parseKnownHosts, preferredKeyTypes,
} from '../../src/transport/known-hosts.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xpr-kh-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const haveKeygen = spawnSync('ssh-keygen', ['-?'], { encoding: 'utf8' }).error === undefined;

/** A fresh public key `type base64`, made with ssh-keygen when present (else a made-up blob). */
function newKey(name: string, type = 'ed25519'): { line: string; blob: Buffer } {
  if (!haveKeygen) {
    const t = type === 'ecdsa' ? 'ecdsa-sha2-nistp256' : 'ssh-ed25519';
    const blob = Buffer.concat([Buffer.from([0, 0, 0, t.length]), Buffer.from(t), Buffer.alloc(32, name.charCodeAt(1))]);
    return { line: `${t} ${blob.toString('base64')}`, blob };
  }
  const f = path.join(dir, name);
  spawnSync('ssh-keygen', ['-q', '-t', type, '-N', '', '-f', f]);
  const [t, b64] = fs.readFileSync(`${f}.pub`, 'utf8').trim().split(/\s+/);
  return { line: `${t} ${b64}`, blob: Buffer.from(b64!, 'base64') };
}

const k1 = newKey('k1');
const k2 = newKey('k2');

describe('known_hosts', () => {
  it('names non-22 ports in brackets', () => {
    expect(knownHostsName('h', 22)).toBe('h');
    expect(knownHostsName('127.0.0.1', 2222)).toBe('[127.0.0.1]:2222');
  });

  it('accepts the recorded key, including [host]:port entries and patterns', () => {
    const entries = parseKnownHosts([
      '# comment',
      `other.example.org ${k2.line}`,
      `[127.0.0.1]:2222 ${k1.line}`,
      `*.example.org,!bad.example.org ${k1.line} comment here`,
    ].join('\n'), 'kh');
    expect(checkHostKey(entries, '[127.0.0.1]:2222', k1.blob)).toMatchObject({ status: 'ok', entry: { line: 3 } });
    expect(checkHostKey(entries, 'node.example.org', k1.blob).status).toBe('ok');
    expect(checkHostKey(entries, 'bad.example.org', k1.blob).status).toBe('unknown');
    // Port 22 entries do not vouch for other ports.
    expect(checkHostKey(entries, '[other.example.org]:2222', k2.blob).status).toBe('unknown');
  });

  it('reports a changed key with its file and line, and says how to remove it', () => {
    const entries = parseKnownHosts(`a ${k2.line}\n[127.0.0.1]:2222 ${k2.line}\n`, '/home/me/.ssh/known_hosts');
    const v = checkHostKey(entries, '[127.0.0.1]:2222', k1.blob);
    expect(v).toMatchObject({ status: 'changed', entry: { file: '/home/me/.ssh/known_hosts', line: 2 } });
    if (v.status !== 'changed') throw new Error('expected a changed key');
    const e = hostKeyError(v, k1.blob, { host: 'cluster', hostName: '127.0.0.1', port: 2222, files: ['/home/me/.ssh/known_hosts'] });
    expect(e.message).toContain('/home/me/.ssh/known_hosts:2');
    expect(e.message).toContain(fingerprint(k1.blob));
    expect(e.hint).toContain("ssh-keygen -f /home/me/.ssh/known_hosts -R '[127.0.0.1]:2222'");
  });

  it('treats a key of another type as unknown, and offers the known type first', () => {
    const ecdsa = newKey('e1', 'ecdsa');
    const entries = parseKnownHosts(`h ${ecdsa.line}\n`, 'kh');
    expect(checkHostKey(entries, 'h', k1.blob)).toMatchObject({ status: 'unknown', otherTypes: [{ line: 1 }] });
    expect(preferredKeyTypes(entries, 'h')).toEqual(['ecdsa-sha2-nistp256']);
    // RSA keys are offered under all three RSA signature algorithms.
    const rsaBlob = Buffer.concat([Buffer.from([0, 0, 0, 7]), Buffer.from('ssh-rsa'), Buffer.alloc(8)]);
    expect(preferredKeyTypes(parseKnownHosts(`h ssh-rsa ${rsaBlob.toString('base64')}\n`, 'kh'), 'h'))
      .toEqual(['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa']);
  });

  it('refuses @revoked keys and ignores @cert-authority lines', () => {
    const entries = parseKnownHosts(`@revoked * ${k1.line}\n@cert-authority h ${k2.line}\nh ${k1.line}\n`, 'kh');
    expect(checkHostKey(entries, 'h', k1.blob)).toMatchObject({ status: 'revoked', entry: { line: 1 } });
    // The CA line vouches for nothing: k2 is just a different ed25519 key than the one on line 3.
    expect(checkHostKey(entries, 'h', k2.blob)).toMatchObject({ status: 'changed', entry: { line: 3 } });
  });

  it('says how to accept an unknown key: fingerprint, ssh-keyscan and ssh', () => {
    const e = hostKeyError({ status: 'unknown', otherTypes: [] }, k1.blob,
      { host: 'xpr-test', hostName: '127.0.0.1', port: 2222, files: ['/home/me/.ssh/known_hosts'] });
    expect(e.host).toBe('xpr-test');
    expect(e.message).toContain(fingerprint(k1.blob));
    expect(e.hint).toContain('ssh-keyscan -p 2222 127.0.0.1 >> /home/me/.ssh/known_hosts');
    expect(e.hint).toContain('ssh xpr-test');
  });

  it('names the ssh_config file in the fix commands when xpr reads only that one (XPR_SSH_CONFIG)', () => {
    const ctx = { host: 'xpr-test', hostName: '127.0.0.1', port: 2222, files: ['/kh'], configFile: '/my dir/ssh_config' };
    const unknown = hostKeyError({ status: 'unknown', otherTypes: [] }, k1.blob, ctx);
    expect(unknown.hint).toContain("accept it with: ssh -F '/my dir/ssh_config' xpr-test (answer yes)");
    const v = checkHostKey(parseKnownHosts(`[127.0.0.1]:2222 ${k2.line}\n`, '/kh'), '[127.0.0.1]:2222', k1.blob);
    if (v.status !== 'changed') throw new Error('expected a changed key');
    expect(hostKeyError(v, k1.blob, ctx).hint).toContain("connect again with ssh -F '/my dir/ssh_config' xpr-test");
  });

  it.skipIf(!haveKeygen)('matches hashed entries written by ssh-keygen -H', () => {
    const file = path.join(dir, 'hashed');
    fs.writeFileSync(file, `[127.0.0.1]:2222 ${k1.line}\nplain.example.org ${k2.line}\n`);
    const r = spawnSync('ssh-keygen', ['-H', '-f', file], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    const text = fs.readFileSync(file, 'utf8');
    expect(text).not.toContain('127.0.0.1');
    expect(text).toMatch(/^\|1\|/m);
    const entries = parseKnownHosts(text, file);
    expect(checkHostKey(entries, '[127.0.0.1]:2222', k1.blob).status).toBe('ok');
    expect(checkHostKey(entries, 'plain.example.org', k2.blob).status).toBe('ok');
    expect(checkHostKey(entries, '[127.0.0.1]:2222', k2.blob).status).toBe('changed');
    expect(checkHostKey(entries, '[127.0.0.1]:2223', k1.blob).status).toBe('unknown');
  });

  it.skipIf(!haveKeygen)('prints fingerprints as ssh-keygen -l does', () => {
    const r = spawnSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', path.join(dir, 'k1.pub')], { encoding: 'utf8' });
    expect(r.stdout.split(/\s+/)[1]).toBe(fingerprint(k1.blob));
  });
});
