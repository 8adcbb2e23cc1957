/**
 * Interop fixtures for encrypted images made by the real tools: keys from
 * openssl and gpg, layers encrypted by `skopeo copy --encryption-key`.
 * Keys are generated per call, never checked in.
 */
import { execFile } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Descriptor } from '../../src/domain/image/descriptor.js';
import { buildImage, imageManifestEntry, writeOciLayout } from '../helpers/image-builder.js';
import { tar } from '../helpers/tar-writer.js';

const execFileP = promisify(execFile);

async function run(cmd: string, args: readonly string[], env?: NodeJS.ProcessEnv): Promise<Buffer> {
  try {
    const { stdout } = await execFileP(cmd, [...args], { env: { ...process.env, ...env }, encoding: 'buffer', maxBuffer: 64 << 20 });
    return stdout;
  } catch (err) {
    const e = err as { stderr?: Buffer; message: string };
    throw new Error(`${cmd} ${args.join(' ')} failed: ${e.stderr?.toString('utf8').trim() || e.message}`);
  }
}

export interface KeyFile {
  readonly path: string;
  readonly bytes: Buffer;
}

export interface GpgIdentity {
  /** A GNUPGHOME holding the key pair; skopeo finds the recipient there. */
  readonly home: string;
  readonly email: string;
  /** `gpg --export-secret-keys` output, binary, as ocicrypt's gpg-privatekeys expects. */
  readonly secretKeyring: KeyFile;
  /** Undefined when the secret key is not protected. */
  readonly passphrase?: string | undefined;
}

export interface TestKeys {
  readonly dir: string;
  readonly rsa: { readonly pkcs8Pem: KeyFile; readonly pkcs1Pem: KeyFile; readonly publicPem: KeyFile };
  readonly ec: { readonly pkcs8Pem: KeyFile; readonly publicPem: KeyFile };
  /** Self-signed certificate and its RSA key, for pkcs7. */
  readonly x509: { readonly certPem: KeyFile; readonly keyPem: KeyFile };
  readonly gpg: GpgIdentity;
  readonly gpgLocked: GpgIdentity;
}

const keyFile = async (path: string): Promise<KeyFile> => ({ path, bytes: await readFile(path) });

async function makeGpgIdentity(home: string, name: string, email: string, passphrase?: string): Promise<GpgIdentity> {
  await mkdir(home, { recursive: true, mode: 0o700 });
  const env = { GNUPGHOME: home };
  // RSA primary plus an RSA encryption subkey: what skopeo's Go openpgp can encrypt to.
  const params = [
    'Key-Type: RSA',
    'Key-Length: 2048',
    'Key-Usage: sign,cert',
    'Subkey-Type: RSA',
    'Subkey-Length: 2048',
    'Subkey-Usage: encrypt',
    `Name-Real: ${name}`,
    `Name-Email: ${email}`,
    'Expire-Date: 0',
    passphrase === undefined ? '%no-protection' : `Passphrase: ${passphrase}`,
    '%commit',
    '',
  ].join('\n');
  const paramFile = join(home, 'keygen.params');
  await writeFile(paramFile, params, { mode: 0o600 });
  await run('gpg', ['--batch', '--pinentry-mode', 'loopback', '--gen-key', paramFile], env);
  const exportArgs = ['--batch', '--pinentry-mode', 'loopback', '--passphrase', passphrase ?? '', '--export-secret-keys', email];
  const ring = await run('gpg', exportArgs, env);
  if (ring.length === 0) throw new Error(`gpg exported no secret key for ${email}`);
  const ringPath = join(home, 'secring.bin');
  await writeFile(ringPath, ring, { mode: 0o600 });
  return { home, email, secretKeyring: { path: ringPath, bytes: ring }, passphrase };
}

/** RSA, EC, X.509 and two GnuPG identities (one passphrase-protected) under `dir`. */
export async function makeTestKeys(dir: string): Promise<TestKeys> {
  await mkdir(dir, { recursive: true });
  const p = (name: string): string => join(dir, name);
  const gpgs = Promise.all([
    makeGpgIdentity(p('gnupg'), 'Test', 'test@example.com'),
    makeGpgIdentity(p('gnupg-locked'), 'Locked', 'locked@example.com', 'correct horse'),
  ]);
  await Promise.all([
    (async () => {
      await run('openssl', ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', p('rsa.pk8.pem')]);
      await run('openssl', ['rsa', '-in', p('rsa.pk8.pem'), '-traditional', '-out', p('rsa.pk1.pem')]);
      await run('openssl', ['rsa', '-in', p('rsa.pk8.pem'), '-pubout', '-out', p('rsa.pub.pem')]);
    })(),
    (async () => {
      await run('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', p('ec.pk8.pem')]);
      await run('openssl', ['pkey', '-in', p('ec.pk8.pem'), '-pubout', '-out', p('ec.pub.pem')]);
    })(),
    run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', p('cert.key.pem'), '-out', p('cert.pem'), '-subj', '/CN=image-ts test', '-days', '30']),
  ]);
  const [gpg, gpgLocked] = await gpgs;
  return {
    dir,
    rsa: { pkcs8Pem: await keyFile(p('rsa.pk8.pem')), pkcs1Pem: await keyFile(p('rsa.pk1.pem')), publicPem: await keyFile(p('rsa.pub.pem')) },
    ec: { pkcs8Pem: await keyFile(p('ec.pk8.pem')), publicPem: await keyFile(p('ec.pub.pem')) },
    x509: { certPem: await keyFile(p('cert.pem')), keyPem: await keyFile(p('cert.key.pem')) },
    gpg,
    gpgLocked,
  };
}

/** Stops the gpg-agents that key generation started. */
export async function disposeTestKeys(keys: TestKeys): Promise<void> {
  for (const g of [keys.gpg, keys.gpgLocked]) {
    await run('gpgconf', ['--kill', 'gpg-agent'], { GNUPGHOME: g.home }).catch(() => undefined);
  }
}

export interface SourceLayout {
  /** `oci:DIR:latest`, for skopeo. */
  readonly ref: string;
  readonly dir: string;
  /** The gzip layer blob, exactly as stored. */
  readonly layerBlob: Buffer;
  readonly layerTar: Buffer;
}

/** A one-layer OCI layout with a gzip layer, tagged `latest`. */
export async function writeSourceLayout(dir: string, files: Record<string, string> = { 'etc/hello.txt': 'hello from an encrypted layer\n' }): Promise<SourceLayout> {
  const entries = Object.entries(files).map(([name, content]) => ({ name, content }));
  const layerTar = tar([{ name: 'etc/', type: 'dir' }, ...entries]);
  const image = buildImage({ layers: [{ tar: layerTar, compression: 'gzip' }] });
  await writeOciLayout(dir, [imageManifestEntry(image, 'latest')]);
  return { ref: `oci:${dir}:latest`, dir, layerBlob: image.layers[0]!.bytes, layerTar };
}

/**
 * `skopeo copy --encryption-key R ...` from `srcLayoutRef` (`oci:DIR:TAG`) into
 * `dstLayoutDir` tagged `latest`. Recipients are skopeo's spellings:
 * `jwe:pub.pem`, `pkcs7:cert.pem`, `pgp:email` (with GNUPGHOME in `env`).
 */
export async function encryptLayout(srcLayoutRef: string, dstLayoutDir: string, recipients: readonly string[], env?: NodeJS.ProcessEnv): Promise<void> {
  const args = ['copy', '--insecure-policy'];
  for (const r of recipients) args.push('--encryption-key', r);
  args.push(srcLayoutRef, `oci:${dstLayoutDir}:latest`);
  await run('skopeo', args, env);
}

export interface LayoutLayer {
  readonly descriptor: Descriptor;
  readonly blob: Buffer;
}

async function readJson(path: string): Promise<Record<string, unknown>> {
  const v: unknown = JSON.parse(await readFile(path, 'utf8'));
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error(`${path} is not a JSON object`);
  return v as Record<string, unknown>;
}

const blobPath = (dir: string, digest: string): string => {
  const [alg, hex] = digest.split(':');
  return join(dir, 'blobs', alg!, hex!);
};

/** Every layer of the first manifest in an OCI layout, descriptor and blob. */
export async function readLayoutLayers(dir: string): Promise<LayoutLayer[]> {
  const index = await readJson(join(dir, 'index.json'));
  const manifests = index['manifests'];
  if (!Array.isArray(manifests) || manifests.length === 0) throw new Error(`${dir}/index.json lists no manifest`);
  const top = Descriptor.parse(manifests[0], 'index.manifests[0]');
  const manifest = await readJson(blobPath(dir, top.digest.toString()));
  const layers = manifest['layers'];
  if (!Array.isArray(layers)) throw new Error(`manifest ${top.digest} has no layers`);
  return Promise.all(
    layers.map(async (l: unknown, i: number) => {
      const descriptor = Descriptor.parse(l, `layers[${i}]`);
      return { descriptor, blob: await readFile(blobPath(dir, descriptor.digest.toString())) };
    }),
  );
}

export async function readFirstLayer(dir: string): Promise<LayoutLayer> {
  const [first] = await readLayoutLayers(dir);
  if (!first) throw new Error(`${dir}: the manifest has no layer`);
  return first;
}
