/**
 * Fixtures for the signature verifier contracts: gpg keys and `gpg --sign`
 * messages for simple signing, openssl keys and signatures (and a test
 * Rekor key) for cosign. Each takes the verifier under test.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { COSIGN_SIGNATURE_MEDIA_TYPE } from '../../src/domain/policy/cosign-signatures.js';
import type { SigstoreVerifier, SimpleSigningVerifier } from '../../src/ports/signatures/signature-verifier.js';
import type { SigstoreVerifierFixture } from '../../contract-tests/sigstore-verifier.contract.js';
import type { SimpleSigningVerifierFixture } from '../../contract-tests/simple-signing-verifier.contract.js';
import { BUNDLE_ANNOTATION, SIGNATURE_ANNOTATION, generateKey, rekorBundle, signPayload, type CosignKeyKind } from './cosign.js';
import { keylessFixture } from './keyless-fixture.js';

const execFileP = promisify(execFile);

async function gpg(home: string, args: readonly string[], input?: Buffer): Promise<Buffer> {
  const child = execFileP('gpg', ['--batch', '--yes', '--pinentry-mode', 'loopback', '--passphrase', '', ...args], {
    env: { ...process.env, GNUPGHOME: home },
    encoding: 'buffer',
    maxBuffer: 16 << 20,
  });
  // A command that reads no input may exit before the pipe is closed: EPIPE then says nothing.
  child.child.stdin?.on('error', () => undefined);
  child.child.stdin?.end(input ?? Buffer.alloc(0));
  try {
    return (await child).stdout;
  } catch (err) {
    const e = err as { stderr?: Buffer; message: string };
    throw new Error(`gpg ${args.join(' ')} failed: ${e.stderr?.toString('utf8').trim() || e.message}`);
  }
}

/** Two gpg identities in one GNUPGHOME (`algo` as `gpg --quick-gen-key` takes it); signatures by `gpg -z 0 --sign`. */
export async function gpgSigningFixture(verifier: SimpleSigningVerifier, algo: string, armor: boolean): Promise<SimpleSigningVerifierFixture> {
  const dir = await mkdtemp(join(tmpdir(), 'image-ts-simple-signing-'));
  const home = join(dir, 'gnupg');
  await mkdir(home, { mode: 0o700 });
  const identity = async (name: string): Promise<{ fpr: string; ring: Buffer }> => {
    const email = `${name}@example.com`;
    await gpg(home, ['--quick-gen-key', `Contract ${name} <${email}>`, algo, 'sign', 'never']);
    const colons = (await gpg(home, ['--with-colons', '--list-keys', email])).toString('utf8');
    const fpr = /^fpr:(?:[^:]*:){8}([0-9A-F]+):/m.exec(colons)?.[1];
    if (!fpr) throw new Error(`no fingerprint for ${email}`);
    return { fpr, ring: await gpg(home, [...(armor ? ['--armor'] : []), '--export', email]) };
  };
  const signer = await identity('signer');
  const other = await identity('other');
  return {
    verifier,
    keyring: signer.ring,
    fingerprint: signer.fpr,
    otherKeyring: other.ring,
    sign: (payload) => gpg(home, ['--local-user', signer.fpr, '-z', '0', '--sign', '--output', '-'], payload),
    teardown: async () => {
      await execFileP('gpgconf', ['--kill', 'gpg-agent'], { env: { ...process.env, GNUPGHOME: home } }).catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Keys from the openssl CLI and signatures by `openssl dgst -sign` / `pkeyutl`, as the spec's recipe makes them. */
export async function cosignSigningFixture(verifier: SigstoreVerifier, kind: CosignKeyKind): Promise<SigstoreVerifierFixture> {
  const [key, other, rekor, otherRekor] = await Promise.all([generateKey(kind), generateKey(kind), generateKey('ecdsa-p256'), generateKey('ecdsa-p256')]);
  return {
    verifier,
    publicKey: Buffer.from(key.publicPem),
    otherPublicKey: Buffer.from(other.publicPem),
    rekorPublicKey: Buffer.from(rekor.publicPem),
    otherRekorPublicKey: Buffer.from(otherRekor.publicPem),
    sign: async (payload, options = {}) => {
      const signature = await signPayload(key, payload);
      const annotations: Record<string, string> = { [SIGNATURE_ANNOTATION]: signature.toString('base64') };
      if (options.rekor) annotations[BUNDLE_ANNOTATION] = rekorBundle({ rekorKey: rekor, payload, signature, publicKeyPem: key.publicPem });
      return { mimeType: COSIGN_SIGNATURE_MEDIA_TYPE, payload, annotations };
    },
    keyless: keylessFixture({ key, rekor }),
    teardown: async () => undefined,
  };
}
