import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { LookasideSignatureSource } from '../src/adapters/outbound/signatures/lookaside-source.js';
import { parseRegistriesDFile } from '../src/adapters/outbound/signatures/registries-d.js';
import { ConfiguredLookaside } from '../src/adapters/wiring/signatures.js';
import { resolveSettings } from '../src/adapters/wiring/settings.js';
import type { Digest } from '../src/domain/image/digest.js';
import type { Reference } from '../src/domain/image/reference.js';
import { freePort } from '../test/harness/registry.js';
import { MemorySignatureSource } from '../test/mocks/memory-signature-source.js';
import { signatureSourceContract } from './signature-source.contract.js';
import { silentLogger } from '../src/adapters/outbound/silent-logger.js';

/** The lookaside layout: `<base>/<Path()>@<algo>=<hex>/signature-<N>`. */
const sigPath = (ref: Reference, d: Digest): string => `${ref.path}@${d.algorithm}=${d.encoded}`;

/** A directory lookaside, written as skopeo/c/image write one. */
async function fileLookaside(): Promise<{ base: string; dead: string; store(ref: Reference, d: Digest, blobs: readonly Buffer[]): Promise<void>; cleanup(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'image-ts-lookaside-'));
  const root = join(dir, 'sigstore');
  // "Cannot be read": a base below a regular file (ENOTDIR).
  await writeFile(join(dir, 'a-file'), '');
  return {
    base: pathToFileURL(root).href,
    dead: pathToFileURL(join(dir, 'a-file', 'sigstore')).href,
    store: async (ref, d, blobs) => {
      const at = join(root, sigPath(ref, d));
      await rm(at, { recursive: true, force: true });
      await mkdir(at, { recursive: true });
      for (const [i, blob] of blobs.entries()) await writeFile(join(at, `signature-${i + 1}`), blob);
    },
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}

/** A web server lookaside: 200 with the blob, 404 past the last one. */
async function httpLookaside(): Promise<{ base: string; dead: string; store(ref: Reference, d: Digest, blobs: readonly Buffer[]): Promise<void>; cleanup(): Promise<void> }> {
  const blobs = new Map<string, Buffer>();
  const server: Server = createServer((req, res) => {
    const blob = blobs.get(decodeURIComponent(req.url ?? ''));
    res.writeHead(blob ? 200 : 404, { 'content-type': 'application/octet-stream' });
    res.end(blob ?? 'not found');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    base: `${origin}/sigs`,
    dead: `http://127.0.0.1:${await freePort()}/sigs`,
    store: async (ref, d, list) => {
      const prefix = `/sigs/${sigPath(ref, d)}/signature-`;
      for (const k of [...blobs.keys()]) if (k.startsWith(prefix)) blobs.delete(k);
      list.forEach((blob, i) => blobs.set(`${prefix}${i + 1}`, blob));
    },
    cleanup: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

for (const [kind, open] of [['file://', fileLookaside], ['http://', httpLookaside]] as const) {
  signatureSourceContract(`LookasideSignatureSource, ${kind} lookaside`, async () => {
    const l = await open();
    return {
      source: new LookasideSignatureSource({ defaultBase: l.base }),
      deadSource: new LookasideSignatureSource({ defaultBase: l.dead }),
      store: l.store,
      teardown: l.cleanup,
    };
  });

  // The section for the image's scope names the lookaside; the default points nowhere.
  signatureSourceContract(`LookasideSignatureSource, ${kind} lookaside from a registries.d scope`, async () => {
    const l = await open();
    const config = (base: string) => parseRegistriesDFile(`docker:\n  registry.example.com/team:\n    lookaside: ${base}\n`, 'contract.yaml');
    return {
      source: new LookasideSignatureSource({ registriesD: await config(l.base), defaultBase: 'file:///nonexistent/image-ts' }),
      deadSource: new LookasideSignatureSource({ registriesD: await config(l.dead), defaultBase: 'file:///nonexistent/image-ts' }),
      store: l.store,
      teardown: l.cleanup,
    };
  });
}

// The wiring's source: registries.d read on first use, from a directory or inline YAML.
signatureSourceContract('ConfiguredLookaside (registries.d directory, http:// lookaside)', async () => {
  const l = await httpLookaside();
  const dir = await mkdtemp(join(tmpdir(), 'image-ts-registries-d-'));
  const configured = async (name: string, base: string): Promise<ConfiguredLookaside> => {
    await mkdir(join(dir, name));
    await writeFile(join(dir, name, 'default.yaml'), `default-docker:\n  lookaside: ${base}\n`);
    return new ConfiguredLookaside(resolveSettings({ workDir: dir, registriesD: { dirs: [join(dir, name)] } }, {}, {}), [], silentLogger);
  };
  return {
    source: await configured('live', l.base),
    deadSource: await configured('dead', l.dead),
    store: l.store,
    teardown: async () => {
      await l.cleanup();
      await rm(dir, { recursive: true, force: true });
    },
  };
});

signatureSourceContract('ConfiguredLookaside (inline registries.d, file:// lookaside)', async () => {
  const l = await fileLookaside();
  const configured = (base: string): ConfiguredLookaside =>
    new ConfiguredLookaside(resolveSettings({ workDir: tmpdir(), registriesD: { inline: `default-docker:\n  lookaside: ${base}\n` } }, {}, {}), [], silentLogger);
  return { source: configured(l.base), deadSource: configured(l.dead), store: l.store, teardown: l.cleanup };
});

signatureSourceContract('in-memory mock', async () => {
  const source = new MemorySignatureSource();
  const deadSource = new MemorySignatureSource();
  deadSource.down = true;
  return { source, deadSource, store: async (ref, d, blobs) => source.put(ref, d, blobs), teardown: async () => undefined };
});
