import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseChallenges } from '../../src/domain/auth/challenge.js';
import { lookupCredentials, lookupKeys, normalizeAuthKey, parseAuthFile } from '../../src/domain/auth/credential-lookup.js';
import { ImageTsError } from '../../src/domain/errors.js';
import { Reference } from '../../src/domain/image/reference.js';

const b64 = (s: string): string => Buffer.from(s).toString('base64');
const file = (auths: Record<string, unknown>, extra: Record<string, unknown> = {}): string => JSON.stringify({ auths, ...extra });
const lookup = (auths: Record<string, unknown>, image: string) =>
  lookupCredentials(parseAuthFile(file(auths), 'auth.json'), Reference.parse(image));
const basic = (username: string, password: string) => ({ kind: 'basic', username, password });

describe('credential lookup', () => {
  it('tries the repository, then each parent namespace, then the host', () => {
    assert.deepEqual(lookupKeys(Reference.parse('reg.example.com/a/b/c:1')), [
      'reg.example.com/a/b/c',
      'reg.example.com/a/b',
      'reg.example.com/a',
      'reg.example.com',
    ]);
    const auths = {
      'reg.example.com': { auth: b64('host:h') },
      'reg.example.com/a': { auth: b64('ns:n') },
      'reg.example.com/a/b/c': { auth: b64('repo:r') },
    };
    assert.deepEqual(lookup(auths, 'reg.example.com/a/b/c'), basic('repo', 'r'));
    assert.deepEqual(lookup(auths, 'reg.example.com/a/b/other'), basic('ns', 'n'));
    assert.deepEqual(lookup(auths, 'reg.example.com/z/y'), basic('host', 'h'));
    assert.equal(lookup(auths, 'other.example.com/a/b/c'), undefined);
  });

  it('splits user:pass at the first colon and trims trailing NULs', () => {
    assert.deepEqual(lookup({ 'r.io': { auth: b64('u:p:a:ss\0\0') } }, 'r.io/x'), basic('u', 'p:a:ss'));
  });

  it('folds docker.io, registry-1.docker.io and index.docker.io together', () => {
    const hub = { 'https://index.docker.io/v1/': { auth: b64('hub:pw') } };
    assert.deepEqual(lookup(hub, 'busybox'), basic('hub', 'pw'));
    assert.deepEqual(lookup({ 'registry-1.docker.io': { auth: b64('r1:pw') } }, 'docker.io/library/busybox'), basic('r1', 'pw'));
    assert.deepEqual(lookup({ 'docker.io/library': { auth: b64('lib:pw') } }, 'busybox'), basic('lib', 'pw'));
    assert.equal(normalizeAuthKey('http://reg.example.com:5000/v2/'), 'reg.example.com:5000');
    // Without a scheme a path stays, so the key is not a host-only match.
    assert.equal(lookup({ 'reg.example.com/v1/': { auth: b64('a:b') } }, 'reg.example.com/x'), undefined);
  });

  it('lets the first existing key win even when it holds nothing usable', () => {
    const auths = { 'r.io/team/app': {}, 'r.io': { auth: b64('host:h') } };
    assert.equal(lookup(auths, 'r.io/team/app'), undefined);
    assert.equal(lookup({ 'r.io/team': { auth: b64('nocolon') }, 'r.io': { auth: b64('host:h') } }, 'r.io/team/app'), undefined);
    assert.deepEqual(lookup(auths, 'r.io/team/other'), basic('host', 'h'));
  });

  it('returns an identity token when the entry has one', () => {
    assert.deepEqual(lookup({ 'r.io': { auth: b64('bob:'), identitytoken: 'refresh-xyz' } }, 'r.io/a'), {
      kind: 'identity-token',
      username: 'bob',
      token: 'refresh-xyz',
    });
  });

  it('accepts files without auths, and ignores credsStore', () => {
    assert.equal(lookupCredentials(parseAuthFile('{"credsStore":"desktop"}', 'f'), Reference.parse('r.io/a')), undefined);
  });

  it('reports malformed files as CONFIG_FILE_INVALID without echoing secrets', () => {
    const secret = 'TopSecretPassword';
    const cases = [
      `{"auths":{"r.io":{"auth":"${secret}!!"}}}`, // not base64
      `{"auths":{"r.io":{"auth":"${b64(`u:${secret}`)}"`, // truncated JSON
      `{"auths":{"r.io":{"auth":"${secret}" oops}}}`,
      `{"auths":["${secret}"]}`,
    ];
    for (const text of cases) {
      assert.throws(
        () => parseAuthFile(text, '/run/auth.json'),
        (err: unknown) => {
          assert.ok(err instanceof ImageTsError);
          assert.equal(err.code, 'CONFIG_FILE_INVALID');
          assert.ok(!err.message.includes(secret), err.message);
          assert.ok(!err.message.includes(b64(`u:${secret}`)), err.message);
          assert.ok(!err.message.includes('\n'));
          assert.match(err.message, /\/run\/auth\.json/);
          return true;
        },
      );
    }
  });
});

describe('WWW-Authenticate parsing', () => {
  it('parses a bearer challenge with quoted params', () => {
    const [c] = parseChallenges('Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:a/b:pull"');
    assert.equal(c?.scheme, 'bearer');
    assert.deepEqual({ ...c?.params }, {
      realm: 'https://auth.example.com/token',
      service: 'registry.example.com',
      scope: 'repository:a/b:pull',
    });
  });

  it('lowercases schemes and param names, keeps values, handles escapes and tokens', () => {
    const [c] = parseChallenges('BASIC Realm="say \\"hi\\", ok" , Charset=UTF-8');
    assert.equal(c?.scheme, 'basic');
    assert.deepEqual({ ...c?.params }, { realm: 'say "hi", ok', charset: 'UTF-8' });
  });

  it('splits several challenges in one header and across headers', () => {
    const got = parseChallenges([
      'Basic realm="r1", Bearer realm="https://t/x",service=s, error="insufficient_scope"',
      'Negotiate abc123==, Digest realm="d", nonce="n"',
    ]);
    assert.deepEqual(got.map((c) => c.scheme), ['basic', 'bearer', 'negotiate', 'digest']);
    assert.deepEqual({ ...got[1]?.params }, { realm: 'https://t/x', service: 's', error: 'insufficient_scope' });
    assert.deepEqual({ ...got[3]?.params }, { realm: 'd', nonce: 'n' });
  });

  it('tolerates junk and empty input', () => {
    assert.deepEqual(parseChallenges(undefined), []);
    assert.deepEqual(parseChallenges(''), []);
    const unterminated = parseChallenges('Bearer realm="unterminated');
    assert.deepEqual(unterminated.map((c) => [c.scheme, c.params['realm']]), [['bearer', undefined]]);
    const [c] = parseChallenges('Bearer __proto__="x"');
    assert.equal(c?.params['__proto__'], 'x');
    assert.equal(Object.getPrototypeOf(c?.params), null);
  });
});
