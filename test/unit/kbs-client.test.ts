import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, describe, it } from 'node:test';
import { KbsKeyBroker, kbsReportData, type KbsKeyBrokerOptions } from '../../src/adapters/outbound/keys/brokers/kbs-key-broker.js';
import { SampleAttester } from '../../src/adapters/outbound/keys/attestation/sample-attester.js';
import { canonicalJson } from '../../src/domain/encryption/jcs.js';
import { ResourceUri } from '../../src/domain/encryption/resource-uri.js';
import { ImageTsError } from '../../src/domain/errors.js';
import type { Logger } from '../../src/ports/observability/logger.js';
import { startKbsServer, type KbsServerOptions, type StartedKbsServer } from '../harness/kbs-server.js';

const NONCE = 'AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=';
const JWK = {
  alg: 'ECDH-ES+A256KW',
  crv: 'P-256',
  kty: 'EC',
  x: 'WKn-ZIGevcwGIyyrzFoZNBdaq9_TsqzGl96oc0CWuis',
  y: 'y77t-RvAHRKTsSGdIYUfweuOvwrvDD-Q3Hv5J0fSKbE',
} as const;
const SPEC_DIGEST = 'fjxDDRsgAn36kbod0QS+yhnZDfjZG3+5URpoVNcFQQIZYqGyFrGEsLF4E+ujd/IE';

const uri = (s: string): ResourceUri => ResourceUri.parse(s);
const code = (c: string) => (e: unknown): boolean => {
  assert.ok(e instanceof ImageTsError, String(e));
  assert.equal(e.code, c, e.message);
  return true;
};

const kek = randomBytes(32);
const other = randomBytes(48);
const resources = new Map([
  ['default/key/1', kek],
  ['default/key/2', other],
]);

/** Every error message any test saw, checked for secrets at the end. */
const messages: string[] = [];
const servers: StartedKbsServer[] = [];
const brokers: KbsKeyBroker[] = [];

async function setup(
  serverOptions: Partial<KbsServerOptions> = {},
  brokerOptions: Partial<KbsKeyBrokerOptions> = {},
): Promise<{ kbs: StartedKbsServer; broker: KbsKeyBroker }> {
  const kbs = await startKbsServer({ resources, ...serverOptions });
  const broker = new KbsKeyBroker({ url: kbs.url, attester: new SampleAttester(), retryDelayMs: 1, ...brokerOptions });
  servers.push(kbs);
  brokers.push(broker);
  return { kbs, broker };
}

async function failure(p: Promise<unknown>): Promise<ImageTsError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof ImageTsError, String(err));
    messages.push(err.message);
    return err;
  }
  assert.fail('expected a rejection');
}

after(async () => {
  for (const b of brokers) await b.close();
  for (const s of servers) await s.close();
});

describe('JCS (RFC 8785)', () => {
  it('sorts members, recursively, and writes no whitespace', () => {
    assert.equal(canonicalJson({ b: [3, { z: null, a: true }], a: 'x', c: { y: 1.5, x: -0 } }), '{"a":"x","b":[3,{"a":true,"z":null}],"c":{"x":0,"y":1.5}}');
  });

  it('sorts by UTF-16 code units and escapes like ECMAScript', () => {
    // Member order from the RFC's sorting example (§3.2.3).
    const input = { '\u20ac': 'Euro Sign', '\r': 'Carriage Return', '\ufb33': 'Hebrew Letter Dalet With Dagesh', '1': 'One', '\ud83d\ude00': 'Emoji: Grinning Face', '\u0080': 'Control', '\u00f6': 'Latin Small Letter O With Diaeresis' };
    const values = Object.values(JSON.parse(canonicalJson(input)) as Record<string, string>);
    const keysInOrder = [...canonicalJson(input).matchAll(/"((?:[^"\\]|\\.)*)":/g)].map((m) => JSON.parse(`"${m[1]}"`) as string);
    assert.deepEqual(keysInOrder, ['\r', '1', '\u0080', '\u00f6', '\u20ac', '\ud83d\ude00', '\ufb33']);
    assert.equal(values.length, 7);
    assert.equal(canonicalJson('\u2028\n"'), '"\u2028\\n\\""');
    assert.equal(canonicalJson([1e21, 1e-7, 0.1]), '[1e+21,1e-7,0.1]');
  });

  it('refuses numbers JSON cannot hold', () => {
    assert.throws(() => canonicalJson(Number.NaN), code('INVALID_ARGUMENT'));
    assert.throws(() => canonicalJson({ a: Number.POSITIVE_INFINITY }), code('INVALID_ARGUMENT'));
  });

  it('reproduces the spec example of the KBS runtime data and its sha384', () => {
    const runtime = { 'tee-pubkey': JWK, nonce: NONCE, 'additional-evidence': '' };
    assert.equal(
      canonicalJson(runtime),
      `{"additional-evidence":"","nonce":"${NONCE}","tee-pubkey":{"alg":"ECDH-ES+A256KW","crv":"P-256","kty":"EC","x":"${JWK.x}","y":"${JWK.y}"}}`,
    );
    assert.equal(createHash('sha384').update(canonicalJson(runtime)).digest('base64'), SPEC_DIGEST);
    assert.equal(kbsReportData('sha384', NONCE, JWK).toString('base64'), SPEC_DIGEST);
    assert.equal(kbsReportData('sha512', NONCE, JWK).length, 64);
  });
});

describe('KBS client', () => {
  it('sends version 0.4.0, the sample TEE and exactly the tee-pubkey members the KBS hashes', async () => {
    const { kbs, broker } = await setup({}, { initdata: 'algorithm = "sha384"\nversion = "0.1.0"\n' });
    assert.deepEqual(await broker.getResource(uri('kbs:///default/key/1')), kek);
    const [auth, attest, get] = kbs.stats.requests;
    assert.equal(auth?.path, '/kbs/v0/auth');
    const hashes = (auth?.body as { 'extra-params': { 'supported-hash-algorithms': string[] } })['extra-params']['supported-hash-algorithms'];
    assert.deepEqual(auth?.body, { version: '0.4.0', tee: 'sample', 'extra-params': { 'supported-hash-algorithms': hashes } });
    for (const h of ['sha256', 'sha384', 'sha512']) assert.ok(hashes.includes(h), h);

    assert.equal(attest?.path, '/kbs/v0/attest');
    assert.equal(attest?.cookie, kbs.sessionIds()[0]);
    const body = attest?.body as Record<string, Record<string, unknown>>;
    assert.deepEqual(Object.keys(body).sort(), ['init-data', 'runtime-data', 'tee-evidence']);
    assert.deepEqual(body['init-data'], { format: 'toml', body: 'algorithm = "sha384"\nversion = "0.1.0"\n' });
    const runtime = body['runtime-data'] as { nonce: string; 'tee-pubkey': Record<string, string> };
    assert.deepEqual(Object.keys(runtime).sort(), ['nonce', 'tee-pubkey']);
    const pub = runtime['tee-pubkey'];
    assert.deepEqual(Object.keys(pub).sort(), ['alg', 'crv', 'kty', 'x', 'y']);
    assert.deepEqual({ kty: pub['kty'], crv: pub['crv'], alg: pub['alg'] }, { kty: 'EC', crv: 'P-256', alg: 'ECDH-ES+A256KW' });
    const evidence = body['tee-evidence'] as { primary_evidence: { svn: string; report_data: string }; additional_evidence: string };
    assert.deepEqual(Object.keys(evidence).sort(), ['additional_evidence', 'primary_evidence']);
    assert.equal(evidence.additional_evidence, '');
    assert.equal(evidence.primary_evidence.svn, '1');
    const expected = createHash('sha384').update(canonicalJson({ 'additional-evidence': '', nonce: runtime.nonce, 'tee-pubkey': pub })).digest('base64');
    assert.equal(evidence.primary_evidence.report_data, expected);

    assert.equal(get?.path, '/kbs/v0/resource/default/key/1');
    assert.equal(get?.cookie, kbs.sessionIds()[0]);
  });

  it('sends init-data null without initdata, and uses the hash the KBS selects', async () => {
    const { kbs, broker } = await setup({ selectedHashAlgorithm: 'sha512' });
    assert.deepEqual(await broker.getResource(uri('kbs:///default/key/1')), kek);
    const attest = kbs.stats.requests[1]?.body as Record<string, unknown>;
    assert.equal(attest['init-data'], null);
    const report = (attest['tee-evidence'] as { primary_evidence: { report_data: string } }).primary_evidence.report_data;
    assert.equal(Buffer.from(report, 'base64').length, 64);
  });

  it('reuses one session for later resources: 1 auth, 1 attest, 2 GETs', async () => {
    const { kbs, broker } = await setup();
    assert.deepEqual(await broker.getResource(uri('kbs:///default/key/1')), kek);
    assert.deepEqual(await broker.getResource(uri('kbs:///default/key/2')), other);
    assert.deepEqual({ auth: kbs.stats.auth, attest: kbs.stats.attest, resource: kbs.stats.resource }, { auth: 1, attest: 1, resource: 2 });
  });

  it('shares one handshake between concurrent requests', async () => {
    const { kbs, broker } = await setup();
    const got = await Promise.all(Array.from({ length: 10 }, (_, i) => broker.getResource(uri(`kbs:///default/key/${(i % 2) + 1}`))));
    got.forEach((v, i) => assert.deepEqual(v, i % 2 ? other : kek));
    assert.deepEqual({ auth: kbs.stats.auth, attest: kbs.stats.attest, resource: kbs.stats.resource }, { auth: 1, attest: 1, resource: 10 });
  });

  it('attests again exactly once when the KBS forgets the session', async () => {
    const { kbs, broker } = await setup();
    await broker.getResource(uri('kbs:///default/key/1'));
    kbs.expireSessions();
    assert.deepEqual(await broker.getResource(uri('kbs:///default/key/2')), other);
    assert.deepEqual({ auth: kbs.stats.auth, attest: kbs.stats.attest, resource: kbs.stats.resource }, { auth: 2, attest: 2, resource: 3 });
    assert.deepEqual(kbs.stats.requests.map((r) => r.status), [200, 200, 200, 401, 200, 200, 200]);
    // And keeps the new session.
    await broker.getResource(uri('kbs:///default/key/1'));
    assert.equal(kbs.stats.auth, 2);
  });

  it('reports a refused attestation as ATTESTATION_FAILED with the KBS reason, and tries again next time', async () => {
    const { kbs, broker } = await setup();
    kbs.faults.denyAttestation = true;
    const e = await failure(broker.getResource(uri('kbs:///default/key/1')));
    code('ATTESTATION_FAILED')(e);
    assert.match(e.message, /AttestationError: attestation policy denied/);
    kbs.faults.denyAttestation = false;
    assert.deepEqual(await broker.getResource(uri('kbs:///default/key/1')), kek);
    assert.equal(kbs.stats.auth, 2);
  });

  it('reports an attester that cannot produce evidence as ATTESTATION_FAILED', async () => {
    const attester = new SampleAttester();
    attester.getEvidence = async () => {
      throw new Error('no TEE device');
    };
    const { broker } = await setup({}, { attester });
    code('ATTESTATION_FAILED')(await failure(broker.getResource(uri('kbs:///default/key/1'))));
  });

  it('reports a policy refusal on a fresh session as KEY_BROKER_DENIED without asking again', async () => {
    const { kbs, broker } = await setup({ allow: (path, claims) => path !== 'default/key/2' && claims['tee'] === 'sample' });
    const e = await failure(broker.getResource(uri('kbs:///default/key/2')));
    code('KEY_BROKER_DENIED')(e);
    assert.match(e.message, /default\/key\/2: PolicyDeny/);
    assert.deepEqual({ auth: kbs.stats.auth, attest: kbs.stats.attest, resource: kbs.stats.resource }, { auth: 1, attest: 1, resource: 1 });
  });

  it('attests once more before accepting a refusal given to an older session', async () => {
    const { kbs, broker } = await setup();
    await broker.getResource(uri('kbs:///default/key/1'));
    kbs.faults.denyResource = true;
    code('KEY_BROKER_DENIED')(await failure(broker.getResource(uri('kbs:///default/key/2'))));
    assert.deepEqual({ auth: kbs.stats.auth, attest: kbs.stats.attest, resource: kbs.stats.resource }, { auth: 2, attest: 2, resource: 3 });
  });

  it('maps plugins and passes query strings through; 404 (bad plugin or path) is KEY_BROKER_DENIED', async () => {
    const { kbs, broker } = await setup();
    assert.deepEqual(await broker.getResource(uri('kbs:///default/key/1?version=2&x=a%20b')), kek);
    assert.equal(kbs.stats.requests.at(-1)?.path, '/kbs/v0/resource/default/key/1?version=2&x=a%20b');
    const e = await failure(broker.getResource(uri('kbs+secret-plugin:///a/b%20c?p=1')));
    code('KEY_BROKER_DENIED')(e);
    assert.match(e.message, /PluginNotFound/);
    assert.equal(kbs.stats.requests.at(-1)?.path, '/kbs/v0/secret-plugin/a/b%20c?p=1');
    assert.equal(kbs.stats.requests.at(-1)?.status, 404);
  });

  it('reports a JWE that does not decrypt as KEY_BROKER_UNAVAILABLE (the KBS misbehaved)', async () => {
    const { kbs, broker } = await setup();
    kbs.faults.corruptJwe = true;
    const e = await failure(broker.getResource(uri('kbs:///default/key/1')));
    code('KEY_BROKER_UNAVAILABLE')(e);
    assert.match(e.message, /does not decrypt/);
  });

  it('retries 5xx answers, then gives up with KEY_BROKER_UNAVAILABLE', async () => {
    const { kbs, broker } = await setup({}, { retries: 3 });
    kbs.faults.serverErrors = 3;
    assert.deepEqual(await broker.getResource(uri('kbs:///default/key/1')), kek);
    kbs.expireSessions();
    kbs.faults.serverErrors = 100;
    const e = await failure(broker.getResource(uri('kbs:///default/key/1')));
    code('KEY_BROKER_UNAVAILABLE')(e);
    assert.match(e.message, /HTTP 503/);
  });

  it('reports connection refused as KEY_BROKER_UNAVAILABLE after its retries', async () => {
    const { kbs } = await setup();
    const url = kbs.url;
    await kbs.close();
    const broker = new KbsKeyBroker({ url, attester: new SampleAttester(), retries: 2, retryDelayMs: 1 });
    brokers.push(broker);
    const e = await failure(broker.getResource(uri('kbs:///default/key/1')));
    code('KEY_BROKER_UNAVAILABLE')(e);
    assert.match(e.message, /ECONNREFUSED/);
  });

  it('lets one caller abort without failing the others that share the handshake', async () => {
    const { broker } = await setup();
    const c = new AbortController();
    const aborted = broker.getResource(uri('kbs:///default/key/1'), c.signal);
    const kept = broker.getResource(uri('kbs:///default/key/2'));
    c.abort();
    await assert.rejects(aborted);
    assert.deepEqual(await kept, other);
  });

  it('refuses bad configuration with INVALID_ARGUMENT', () => {
    const attester = new SampleAttester();
    assert.throws(() => new KbsKeyBroker({ url: 'ftp://kbs.example', attester }), code('INVALID_ARGUMENT'));
    assert.throws(() => new KbsKeyBroker({ url: 'not a url', attester }), code('INVALID_ARGUMENT'));
    assert.throws(() => new KbsKeyBroker({ url: 'https://u:secret@kbs.example', attester }), (e: unknown) => {
      code('INVALID_ARGUMENT')(e);
      assert.ok(!(e as Error).message.includes('secret'));
      return true;
    });
    assert.throws(() => new KbsKeyBroker({ url: 'https://kbs.example', attester, extraCaPems: ['nope'] }), code('INVALID_ARGUMENT'));
  });

  it('masks the session cookie when a KBS echoes it in an error detail', async () => {
    const sid = randomBytes(16).toString('hex');
    const server = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        if (req.url === '/kbs/v0/auth') {
          res.writeHead(200, { 'content-type': 'application/json', 'set-cookie': `kbs-session-id=${sid}` });
          res.end(JSON.stringify({ nonce: randomBytes(32).toString('base64'), 'extra-params': '' }));
          return;
        }
        res.writeHead(401, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ type: 'https://github.com/confidential-containers/kbs/errors/AttestationError', detail: `session ${sid} refused\n${'x'.repeat(1000)}` }));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const broker = new KbsKeyBroker({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, attester: new SampleAttester() });
      brokers.push(broker);
      const e = await failure(broker.getResource(uri('kbs:///default/key/1')));
      code('ATTESTATION_FAILED')(e);
      assert.ok(!e.message.includes(sid));
      assert.ok(!e.message.includes('\n'));
      assert.ok(e.message.length < 400, `${e.message.length}`);
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('logs no secret and puts none into any error message', async () => {
    const logged: string[] = [];
    const logger: Logger = { log: (level, event, fields) => logged.push(JSON.stringify({ level, event, fields })) };
    const { kbs, broker } = await setup({}, { logger });
    await broker.getResource(uri('kbs:///default/key/1'));
    kbs.expireSessions();
    kbs.faults.denyResource = true;
    await failure(broker.getResource(uri('kbs:///default/key/2')));
    assert.ok(logged.length > 0);
    const secrets = [kek, other].flatMap((b) => [b.toString('base64'), b.toString('base64url'), b.toString('hex')]);
    for (const s of servers) secrets.push(...s.sessionIds());
    for (const text of [...messages, ...logged]) {
      for (const s of secrets) assert.ok(!text.includes(s), `secret in ${text}`);
      assert.ok(!/eyJ[\w-]+\.[\w-]+\./.test(text), `token in ${text}`);
    }
  });
});

describe('sample attester', () => {
  it('produces sample evidence, refuses tokens and only records measurements', async () => {
    const a = new SampleAttester();
    assert.equal(await a.getTeeType(), 'sample');
    const digest = randomBytes(48);
    assert.deepEqual(JSON.parse((await a.getEvidence(digest)).toString()), { svn: '1', report_data: digest.toString('base64') });
    await assert.rejects(a.getToken('kbs'), code('ATTESTATION_FAILED'));
    await a.extendRuntimeMeasurement({ domain: 'github.com/confidential-containers', operation: 'PullImage', content: 'sha256:abc' });
    assert.deepEqual(a.measurements, [{ domain: 'github.com/confidential-containers', operation: 'PullImage', content: 'sha256:abc' }]);
  });
});
