/**
 * Simple signing's OpenPGP layer against signatures made by the real tools:
 * keys and signatures from gpg 2.2, payloads from `skopeo standalone-sign`.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { OpenPgpSimpleSigningVerifier } from '../../src/adapters/outbound/signatures/openpgp-verifier.js';
import { ImageTsError } from '../../src/domain/errors.js';

const execFileP = promisify(execFile);

let dir: string;
let home: string;

async function run(cmd: string, args: readonly string[], input?: string): Promise<Buffer> {
  try {
    const child = execFileP(cmd, [...args], { env: { ...process.env, GNUPGHOME: home }, encoding: 'buffer', maxBuffer: 64 << 20 });
    if (input !== undefined) child.child.stdin?.end(input);
    const { stdout } = await child;
    return stdout;
  } catch (err) {
    const e = err as { stderr?: Buffer; message: string };
    throw new Error(`${cmd} ${args.join(' ')} failed: ${e.stderr?.toString('utf8').trim() || e.message}`);
  }
}

const gpg = (args: readonly string[], input?: string): Promise<Buffer> => run('gpg', ['--batch', '--yes', ...args], input);

interface TestKey {
  readonly fpr: string;
  /** Fingerprint of the signing subkey, when there is one. */
  readonly subFpr?: string | undefined;
  /** `gpg --export` of this key alone, binary. */
  readonly ring: Buffer;
}

async function genKey(name: string, lines: readonly string[], fakedTime?: string): Promise<TestKey> {
  const email = `${name}@example.com`;
  const params = [...lines, `Name-Real: ${name}`, `Name-Email: ${email}`, '%no-protection', '%commit', ''].join('\n');
  const file = join(dir, `${name}.params`);
  await writeFile(file, params);
  await gpg([...(fakedTime ? ['--faked-system-time', `${fakedTime}!`] : []), '--gen-key', file]);
  const colons = (await gpg(['--with-colons', '--list-keys', email])).toString('utf8').split('\n');
  const fprs = colons.filter((l) => l.startsWith('fpr:')).map((l) => l.split(':')[9]!);
  return { fpr: fprs[0]!, subFpr: fprs[1], ring: await exportKey(email) };
}

const exportKey = (who: string, armor = false): Promise<Buffer> => gpg([...(armor ? ['--armor'] : []), '--export', who]);

/** Signs `payload` with gpg; returns the signature file's bytes. */
async function gpgSign(payload: string | Buffer, signer: string, extra: readonly string[] = []): Promise<Buffer> {
  const input = join(dir, 'payload.bin');
  const out = join(dir, 'out.sig');
  await writeFile(input, payload);
  await gpg(['--local-user', signer, ...extra, '--output', out, input]);
  return readFile(out);
}

const verifier = new OpenPgpSimpleSigningVerifier();

async function rejects(sig: Buffer, rings: readonly Buffer[], pattern: RegExp): Promise<void> {
  await assert.rejects(verifier.verify(sig, rings), (err: unknown) => {
    assert.ok(err instanceof ImageTsError, `not an ImageTsError: ${String(err)}`);
    assert.equal(err.code, 'SIGNATURE_INVALID');
    assert.match(err.message, pattern);
    assert.doesNotMatch(err.message, /\n/);
    return true;
  });
}

const RSA = ['Key-Type: RSA', 'Key-Length: 2048', 'Expire-Date: 0'];
const PAYLOAD = '{"critical":{"identity":{"docker-reference":"example.com/a/b:v1"},"image":{"docker-manifest-digest":"sha256:' +
  '0'.repeat(64) + '"},"type":"atomic container signature"},"optional":{}}';

describe('OpenPGP simple-signing verifier (gpg + skopeo)', { timeout: 120_000 }, () => {
  let alice: TestKey; // RSA
  let bob: TestKey; // Ed25519
  let carol: TestKey; // certify-only primary, RSA signing subkey
  let dave: TestKey; // created in 2020, never expires
  let erin: TestKey; // created in 2020, expired a day later
  let frank: TestKey; // revoked after signing
  let frankSig: Buffer;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'image-ts-simple-signing-'));
    home = join(dir, 'gnupg');
    await run('mkdir', ['-m', '700', home]);
    alice = await genKey('alice', RSA);
    bob = await genKey('bob', ['Key-Type: EDDSA', 'Key-Curve: ed25519', 'Key-Usage: sign', 'Expire-Date: 0']);
    carol = await genKey('carol', [...RSA, 'Key-Usage: cert', 'Subkey-Type: RSA', 'Subkey-Length: 2048', 'Subkey-Usage: sign']);
    dave = await genKey('dave', RSA, '20200101T000000');
    erin = await genKey('erin', ['Key-Type: RSA', 'Key-Length: 2048', 'Expire-Date: 1d'], '20200101T000000');
    frank = await genKey('frank', RSA);
    frankSig = await gpgSign(PAYLOAD, frank.fpr, ['--sign']);
    // gpg stores a revocation certificate for every new key, "quoted" with a leading colon.
    const rev = (await readFile(join(home, 'openpgp-revocs.d', `${frank.fpr}.rev`), 'utf8')).replace(/^:-----BEGIN/m, '-----BEGIN');
    await writeFile(join(dir, 'frank.rev'), rev);
    await gpg(['--import', join(dir, 'frank.rev')]);
    frank = { ...frank, ring: await exportKey(frank.fpr) };
  });

  after(async () => {
    await run('gpgconf', ['--kill', 'gpg-agent']).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  });

  it('verifies a skopeo standalone-sign signature (compressed) and returns its payload', async () => {
    const manifest = join(dir, 'manifest.json');
    await writeFile(manifest, '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","layers":[]}');
    const digest = (await run('skopeo', ['manifest-digest', manifest])).toString('utf8').trim();
    const sigFile = join(dir, 'skopeo.sig');
    await run('skopeo', ['standalone-sign', manifest, 'docker.io/library/busybox:latest', alice.fpr, '-o', sigFile]);
    const sig = await readFile(sigFile);
    assert.ok(sig[0] === 0xa3 || sig[0] === 0xc8, `compressed packet first, got 0x${sig[0]?.toString(16)}`);
    const result = await verifier.verify(sig, [alice.ring]);
    assert.equal(result.keyIdentity, alice.fpr);
    assert.match(result.keyIdentity, /^[0-9A-F]{40}$/);
    const payload = JSON.parse(result.payload.toString('utf8')) as {
      critical: { identity: Record<string, string>; image: Record<string, string>; type: string };
    };
    assert.equal(payload.critical.type, 'atomic container signature');
    assert.equal(payload.critical.identity['docker-reference'], 'docker.io/library/busybox:latest');
    assert.equal(payload.critical.image['docker-manifest-digest'], digest);
    // And skopeo agrees that this signature is good.
    await run('skopeo', ['standalone-verify', manifest, 'docker.io/library/busybox:latest', alice.fpr, sigFile]);
  });

  it('verifies an uncompressed signed message (gpg -z 0) and returns the exact payload bytes', async () => {
    const sig = await gpgSign(PAYLOAD, alice.fpr, ['-z', '0', '--sign']);
    assert.equal(sig[0], 0x90, 'one-pass signature packet first');
    const result = await verifier.verify(sig, [alice.ring]);
    assert.equal(result.payload.toString('utf8'), PAYLOAD);
    assert.equal(result.keyIdentity, alice.fpr);
  });

  it('accepts armored keyrings, several keys per ring and several rings', async () => {
    const sig = await gpgSign(PAYLOAD, bob.fpr, ['--sign']);
    const both = await gpg(['--export', alice.fpr, bob.fpr]);
    assert.equal((await verifier.verify(sig, [both])).keyIdentity, bob.fpr);
    assert.equal((await verifier.verify(sig, [await exportKey(bob.fpr, true)])).keyIdentity, bob.fpr);
    assert.equal((await verifier.verify(sig, [alice.ring, bob.ring])).keyIdentity, bob.fpr);
    // Two armored blocks in one file.
    const twoBlocks = Buffer.concat([await exportKey(alice.fpr, true), await exportKey(bob.fpr, true)]);
    assert.equal((await verifier.verify(sig, [twoBlocks])).keyIdentity, bob.fpr);
  });

  it('maps a signing subkey to its primary key fingerprint', async () => {
    assert.ok(carol.subFpr && carol.subFpr !== carol.fpr);
    const sig = await gpgSign(PAYLOAD, carol.fpr, ['--sign']);
    const packets = (await gpg(['--list-packets', join(dir, 'out.sig')])).toString('utf8');
    assert.match(packets, new RegExp(`keyid ${carol.subFpr.slice(-16)}`), 'signed by the subkey');
    const result = await verifier.verify(sig, [carol.ring]);
    assert.equal(result.keyIdentity, carol.fpr);
    assert.notEqual(result.keyIdentity, carol.subFpr);
  });

  it('rejects a signature by a key that is not in the keyrings, naming the key ID', async () => {
    const sig = await gpgSign(PAYLOAD, alice.fpr, ['--sign']);
    await rejects(sig, [bob.ring, carol.ring], new RegExp(`unknown key ${alice.fpr.slice(-16)}`));
    await rejects(sig, [], /unknown key/);
  });

  it('rejects ASCII-armored, detached and cleartext signatures', async () => {
    await rejects(await gpgSign(PAYLOAD, alice.fpr, ['--armor', '--sign']), [alice.ring], /armored/);
    await rejects(await gpgSign(PAYLOAD, alice.fpr, ['--detach-sign']), [alice.ring], /detached/);
    await rejects(await gpgSign(PAYLOAD, alice.fpr, ['--clearsign']), [alice.ring], /cleartext/);
  });

  it('rejects unsigned literal data, encrypted data and two signatures in one message', async () => {
    const input = join(dir, 'plain.bin');
    await writeFile(input, PAYLOAD);
    await gpg(['--output', join(dir, 'stored.gpg'), '--store', input]);
    await rejects(await readFile(join(dir, 'stored.gpg')), [alice.ring], /unsigned/);
    await gpg(['--trust-model', 'always', '--recipient', alice.fpr, '--output', join(dir, 'enc.gpg'), '--encrypt', input]);
    await rejects(await readFile(join(dir, 'enc.gpg')), [alice.ring], /encrypted/);
    await gpg(['--passphrase', 'x', '--pinentry-mode', 'loopback', '--output', join(dir, 'sym.gpg'), '--symmetric', input]);
    await rejects(await readFile(join(dir, 'sym.gpg')), [alice.ring], /encrypted/);
    const twice = await gpgSign(PAYLOAD, alice.fpr, ['--local-user', bob.fpr, '--sign']);
    await rejects(twice, [alice.ring, bob.ring], /2 signatures/);
  });

  it('rejects a tampered signature', async () => {
    const sig = await gpgSign(PAYLOAD, alice.fpr, ['-z', '0', '--sign']);
    const at = sig.indexOf(Buffer.from('atomic container signature'));
    assert.ok(at > 0);
    const tampered = Buffer.from(sig);
    tampered[at] ^= 0x01;
    await rejects(tampered, [alice.ring], /bad signature/);
    // A flipped bit inside the signature value itself.
    const badValue = Buffer.from(sig);
    badValue[badValue.length - 10] ^= 0x01;
    await rejects(badValue, [alice.ring], /bad signature/);
    // A flipped byte in compressed data either breaks decompression or the signature.
    const compressed = Buffer.from(await gpgSign(PAYLOAD, alice.fpr, ['--sign']));
    compressed[Math.floor(compressed.length / 3)] ^= 0xff;
    await assert.rejects(verifier.verify(compressed, [alice.ring]), { code: 'SIGNATURE_INVALID' });
  });

  it('rejects an expired signature (creation + lifetime < now)', async () => {
    const sig = await gpgSign(PAYLOAD, dave.fpr, ['--faked-system-time', '20200102T000000!', '--default-sig-expire', '1d', '--sign']);
    await rejects(sig, [dave.ring], /signature expired on 2020-01-03/);
    // The same key's non-expiring signature from 2020 is fine.
    const lasting = await gpgSign(PAYLOAD, dave.fpr, ['--faked-system-time', '20200102T000000!', '--sign']);
    assert.equal((await verifier.verify(lasting, [dave.ring])).keyIdentity, dave.fpr);
  });

  it('rejects signatures by keys that have expired or been revoked', async () => {
    const byExpired = await gpgSign(PAYLOAD, erin.fpr, ['--faked-system-time', '20200101T060000!', '--sign']);
    await rejects(byExpired, [erin.ring], new RegExp(`${erin.fpr}.*(expired|no longer valid)`));
    await rejects(frankSig, [frank.ring], new RegExp(`${frank.fpr}.*(revoked|no longer valid)`));
  });

  it('rejects garbage: empty input, a keyring as signature, an unparsable keyring', async () => {
    await rejects(Buffer.alloc(0), [alice.ring], /empty/);
    await rejects(alice.ring, [alice.ring], /unexpected packet|not an OpenPGP message/);
    await rejects(Buffer.from('hello'), [alice.ring], /not an OpenPGP message/);
    const sig = await gpgSign(PAYLOAD, alice.fpr, ['--sign']);
    await rejects(sig, [Buffer.from('not a keyring')], /keyring/);
  });
});
