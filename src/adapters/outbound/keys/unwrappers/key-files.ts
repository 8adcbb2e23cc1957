import { readFile } from 'node:fs/promises';
import { InvalidArgumentError } from '../../../../domain/errors.js';
import {
  classifyKeyMaterial,
  type DecryptConfig,
  type DecryptionKeySpec,
  type KeyMaterial,
} from '../../../../domain/encryption/decrypt-config.js';

const MAX_KEY_FILE_BYTES = 1024 * 1024;

async function readKeyFile(path: string, what: string): Promise<Buffer> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (err) {
    throw new InvalidArgumentError(`cannot read ${what} ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  if (bytes.length > MAX_KEY_FILE_BYTES) throw new InvalidArgumentError(`${what} ${path} is larger than ${MAX_KEY_FILE_BYTES} bytes`);
  return bytes;
}

/**
 * Turns `--decryption-key` arguments into a DecryptConfig: each file is read
 * and sorted by its bytes (certificate, OpenPGP key, private key), as
 * ocicrypt does. Messages name paths, never contents.
 */
export async function loadDecryptConfig(specs: readonly DecryptionKeySpec[]): Promise<DecryptConfig> {
  const privateKeys: KeyMaterial[] = [];
  const certificates: Buffer[] = [];
  const gpgPrivateKeys: KeyMaterial[] = [];
  const providers: Record<string, Buffer[]> = {};
  for (const spec of specs) {
    if (spec.kind === 'provider') {
      (providers[spec.name] ??= []).push(Buffer.from(spec.params));
      continue;
    }
    const bytes = await readKeyFile(spec.path, 'decryption key');
    let password: Buffer | undefined;
    if (spec.password?.kind === 'literal') password = Buffer.from(spec.password.value);
    if (spec.password?.kind === 'file') {
      // A password file ends with a newline more often than its password does.
      password = Buffer.from((await readKeyFile(spec.password.value, 'password file')).toString('utf8').replace(/\r?\n$/, ''));
    }
    const kind = classifyKeyMaterial(bytes);
    if (kind === 'certificate') certificates.push(bytes);
    else if (kind === 'gpg-private-key') gpgPrivateKeys.push({ bytes, password });
    else privateKeys.push({ bytes, password });
  }
  return { privateKeys, certificates, gpgPrivateKeys, providers };
}
