/**
 * Fixtures for the KeyUnwrapper contract: keys from node:crypto, openssl
 * and gpg, and items wrapped by the producing side (jose, an RFC 5084
 * EnvelopedData, gpg --encrypt). Each takes the unwrapper under test.
 */
import { execFile } from 'node:child_process';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { FlattenedEncrypt, GeneralEncrypt } from 'jose';
import * as openpgp from 'openpgp';
import { EMPTY_DECRYPT_CONFIG, type DecryptConfig } from '../../src/domain/encryption/decrypt-config.js';
import type { KeyUnwrapper } from '../../src/ports/keys/key-unwrapper.js';
import type { KeyUnwrapperFixture } from '../../contract-tests/key-unwrapper.contract.js';
import { pkcs7Envelope } from '../helpers/pkcs7-envelope.js';

const execFileP = promisify(execFile);

async function run(cmd: string, args: readonly string[], options: { env?: NodeJS.ProcessEnv; input?: Buffer } = {}): Promise<Buffer> {
  const child = execFileP(cmd, [...args], { env: { ...process.env, ...options.env }, encoding: 'buffer', maxBuffer: 16 << 20 });
  // A command that reads no input may exit before the pipe is closed: EPIPE then says nothing.
  child.child.stdin?.on('error', () => undefined);
  child.child.stdin?.end(options.input ?? Buffer.alloc(0));
  try {
    return (await child).stdout;
  } catch (err) {
    const e = err as { stderr?: Buffer; message: string };
    throw new Error(`${cmd} ${args.join(' ')} failed: ${e.stderr?.toString('utf8').trim() || e.message}`);
  }
}

const pem = (key: KeyObject): Buffer => Buffer.from(key.export({ format: 'pem', type: 'pkcs8' }));
const privateKeys = (...keys: Buffer[]): DecryptConfig => ({ ...EMPTY_DECRYPT_CONFIG, privateKeys: keys.map((bytes) => ({ bytes })) });

/** Flips one bit of a JWE's authentication tag, leaving the JSON well-formed. */
function tamperJwe(item: Buffer): Buffer {
  const jwe = JSON.parse(item.toString('utf8')) as Record<string, unknown>;
  const tag = Buffer.from(String(jwe['tag']), 'base64url');
  tag[0]! ^= 0x01;
  return Buffer.from(JSON.stringify({ ...jwe, tag: tag.toString('base64url') }));
}

/** The last byte of an item whose sealed content comes last (a GCM tag, an OpenPGP MDC). */
function flipLastByte(item: Buffer): Buffer {
  const out = Buffer.from(item);
  out[out.length - 1]! ^= 0x01;
  return out;
}

/** skopeo's jwe recipient: a flattened JWE, RSA-OAEP (SHA-1) and A256GCM. */
export async function jweRsaFixture(unwrapper: KeyUnwrapper): Promise<KeyUnwrapperFixture> {
  const held = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const other = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return {
    unwrapper,
    held: privateKeys(pem(held.privateKey)),
    other: privateKeys(pem(other.privateKey)),
    wrap: async (privopts) => {
      const jwe = await new FlattenedEncrypt(privopts).setProtectedHeader({ alg: 'RSA-OAEP', enc: 'A256GCM' }).encrypt(held.publicKey);
      return Buffer.from(JSON.stringify(jwe));
    },
    tamper: tamperJwe,
    teardown: async () => undefined,
  };
}

/** An EC recipient beside an RSA one, in the general JSON form go-jose writes for several recipients. */
export async function jweEcFixture(unwrapper: KeyUnwrapper): Promise<KeyUnwrapperFixture> {
  const held = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const bystander = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const other = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return {
    unwrapper,
    held: privateKeys(pem(held.privateKey)),
    other: privateKeys(pem(other.privateKey)),
    wrap: async (privopts) => {
      const jwe = await new GeneralEncrypt(privopts)
        .setProtectedHeader({ enc: 'A256GCM' })
        .addRecipient(bystander.publicKey).setUnprotectedHeader({ alg: 'RSA-OAEP' })
        .addRecipient(held.publicKey).setUnprotectedHeader({ alg: 'ECDH-ES+A256KW' })
        .encrypt();
      return Buffer.from(JSON.stringify(jwe));
    },
    tamper: tamperJwe,
    teardown: async () => undefined,
  };
}

/** Keys and certificates from openssl, as `skopeo copy --encryption-key pkcs7:cert.pem` takes them. */
export async function pkcs7Fixture(unwrapper: KeyUnwrapper): Promise<KeyUnwrapperFixture> {
  const dir = await mkdtemp(join(tmpdir(), 'image-ts-unwrap-p7-'));
  const pair = async (name: string): Promise<{ key: Buffer; cert: Buffer }> => {
    const key = join(dir, `${name}.key`);
    const cert = join(dir, `${name}.pem`);
    await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-subj', `/CN=image-ts ${name}`, '-days', '2']);
    return { key: await readFile(key), cert: await readFile(cert) };
  };
  const [held, other] = await Promise.all([pair('held'), pair('other')]);
  return {
    unwrapper,
    held: { ...privateKeys(held.key), certificates: [held.cert] },
    other: { ...privateKeys(other.key), certificates: [other.cert] },
    wrap: async (privopts) => pkcs7Envelope(privopts, held.cert),
    tamper: flipLastByte,
    teardown: () => rm(dir, { recursive: true, force: true }),
  };
}

/**
 * gpg keys (Ed25519 + Cv25519); gpg encrypts as skopeo's pgp:EMAIL does.
 * The held key is locked by a passphrase with openpgp, since gpg-agent
 * takes seconds to protect one here.
 */
export async function pgpFixture(unwrapper: KeyUnwrapper): Promise<KeyUnwrapperFixture> {
  const dir = await mkdtemp(join(tmpdir(), 'image-ts-unwrap-pgp-'));
  const identity = async (name: string): Promise<{ home: string; email: string; ring: Buffer }> => {
    const home = join(dir, name);
    await mkdir(home, { mode: 0o700 });
    const email = `${name}@example.com`;
    const gpg = ['--batch', '--pinentry-mode', 'loopback', '--passphrase', ''];
    await run('gpg', [...gpg, '--quick-gen-key', `Contract ${name} <${email}>`, 'future-default', 'default', 'never'], { env: { GNUPGHOME: home } });
    return { home, email, ring: await run('gpg', [...gpg, '--export-secret-keys', email], { env: { GNUPGHOME: home } }) };
  };
  const [held, other] = await Promise.all([identity('held'), identity('other')]);
  const passphrase = 'contract horse battery';
  const locked = await openpgp.encryptKey({ privateKey: await openpgp.readPrivateKey({ binaryKey: held.ring }), passphrase });
  return {
    unwrapper,
    held: { ...EMPTY_DECRYPT_CONFIG, gpgPrivateKeys: [{ bytes: Buffer.from(locked.write()), password: Buffer.from(passphrase) }] },
    other: { ...EMPTY_DECRYPT_CONFIG, gpgPrivateKeys: [{ bytes: other.ring }] },
    wrap: (privopts) =>
      run('gpg', ['--batch', '--trust-model', 'always', '--compress-algo', 'none', '--encrypt', '--recipient', held.email, '--output', '-'], {
        env: { GNUPGHOME: held.home },
        input: privopts,
      }),
    tamper: flipLastByte,
    teardown: async () => {
      for (const home of [held.home, other.home]) await run('gpgconf', ['--kill', 'gpg-agent'], { env: { GNUPGHOME: home } }).catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
