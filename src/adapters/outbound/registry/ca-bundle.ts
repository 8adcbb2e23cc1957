import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ConfigFileError } from '../../../domain/errors.js';
import { lazyRequire } from '../lazy.js';

// Loaded only when extra CAs are given: a pull over plain HTTP, or with node's defaults, never needs it.
const tls = lazyRequire<typeof import('node:tls')>('node:tls');

/** Setting `ca` replaces node's bundle, so extra CAs go alongside the public roots. */
export function withPublicRoots(extra: readonly string[]): string[] {
  return [...tls().rootCertificates, ...extra];
}

async function readPem(file: string): Promise<string> {
  const pem = await readFile(file, 'utf8');
  if (!pem.includes('-----BEGIN CERTIFICATE-----')) throw new ConfigFileError(`${file} holds no PEM certificate`);
  return pem;
}

/**
 * Extra CA certificates: inline PEM text, PEM files, or from the `*.crt` files of a directory (the certs.d
 * layout). Returns undefined when there are none, so node's defaults apply untouched.
 */
export async function loadCaBundle(paths: readonly string[], pems: readonly string[] = []): Promise<string[] | undefined> {
  const extra: string[] = [];
  for (const [i, pem] of pems.entries()) {
    if (!pem.includes('-----BEGIN CERTIFICATE-----')) throw new ConfigFileError(`inline CA certificate #${i + 1} is not PEM`);
    extra.push(pem);
  }
  for (const path of paths) {
    try {
      if ((await stat(path)).isDirectory()) {
        const names = (await readdir(path)).filter((n) => n.endsWith('.crt')).sort();
        for (const name of names) extra.push(await readPem(join(path, name)));
      } else {
        extra.push(await readPem(path));
      }
    } catch (err) {
      if (err instanceof ConfigFileError) throw err;
      const code = (err as NodeJS.ErrnoException).code ?? 'read error';
      throw new ConfigFileError(`cannot read CA certificates from ${path}: ${code}`);
    }
  }
  return extra.length > 0 ? withPublicRoots(extra) : undefined;
}
