/**
 * The encrypted variant: the bench's debian-gzip image encrypted by skopeo
 * (jwe, RSA-OAEP) and a key to pull it with. Built once and cached next to
 * the plaintext images; the key never leaves the cache directory.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { BenchImage } from './images.js';

export interface EncryptedBenchImage {
  readonly image: BenchImage;
  readonly privateKey: string;
}

export async function ensureEncryptedImage(cacheDir: string, plain: BenchImage, log: (line: string) => void): Promise<EncryptedBenchImage> {
  const dir = join(cacheDir, 'encrypted', plain.name);
  const layout = join(dir, 'layout');
  const privateKey = join(dir, 'priv.pem');
  if (!existsSync(join(layout, 'index.json')) || !existsSync(privateKey)) {
    log(`[bench-images] encrypting ${plain.name} with skopeo (jwe)`);
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
    execFileSync('openssl', ['genrsa', '-out', privateKey, '2048'], { stdio: 'ignore' });
    execFileSync('openssl', ['rsa', '-in', privateKey, '-pubout', '-out', join(dir, 'pub.pem')], { stdio: 'ignore' });
    const tmp = `${layout}.tmp`;
    execFileSync('skopeo', ['copy', '--quiet', '--insecure-policy', '--encryption-key', `jwe:${join(dir, 'pub.pem')}`,
      `oci:${plain.layout}:${plain.ref}`, `oci:${tmp}:latest`]);
    await rename(tmp, layout);
  }
  return { image: { ...plain, name: `${plain.name}-jwe`, description: `${plain.description}, every layer encrypted by skopeo (jwe)`, layout, ref: 'latest' }, privateKey };
}
