import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { OpenPgpSimpleSigningVerifier } from '../src/adapters/outbound/signatures/openpgp-verifier.js';
import { simpleSigningVerifierContract } from './simple-signing-verifier.contract.js';

const execFileP = promisify(execFile);

async function gpg(home: string, args: readonly string[], input?: Buffer): Promise<Buffer> {
  const child = execFileP('gpg', ['--batch', '--yes', '--pinentry-mode', 'loopback', '--passphrase', '', ...args], {
    env: { ...process.env, GNUPGHOME: home },
    encoding: 'buffer',
    maxBuffer: 16 << 20,
  });
  child.child.stdin?.end(input ?? Buffer.alloc(0));
  try {
    return (await child).stdout;
  } catch (err) {
    const e = err as { stderr?: Buffer; message: string };
    throw new Error(`gpg ${args.join(' ')} failed: ${e.stderr?.toString('utf8').trim() || e.message}`);
  }
}

/** Two gpg identities in one GNUPGHOME; `algo` as `gpg --quick-gen-key` takes it. */
async function gpgFixture(algo: string, armor: boolean) {
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
    verifier: new OpenPgpSimpleSigningVerifier(),
    keyring: signer.ring,
    fingerprint: signer.fpr,
    otherKeyring: other.ring,
    sign: (payload: Buffer) => gpg(home, ['--local-user', signer.fpr, '-z', '0', '--sign', '--output', '-'], payload),
    teardown: async () => {
      await execFileP('gpgconf', ['--kill', 'gpg-agent'], { env: { ...process.env, GNUPGHOME: home } }).catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

simpleSigningVerifierContract('OpenPGP (gpg Ed25519 key, binary keyring)', () => gpgFixture('ed25519', false));
simpleSigningVerifierContract('OpenPGP (gpg RSA 2048 key, armored keyring)', () => gpgFixture('rsa2048', true));
