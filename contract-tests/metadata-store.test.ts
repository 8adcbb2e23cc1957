import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile, mkdir, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { FsMetadataStore } from '../src/adapters/outbound/store/fs-metadata-store.js';
import { ImageTsError } from '../src/domain/errors.js';
import { MemoryMetadataStore } from '../test/mocks/memory-metadata-store.js';
import { metadataStoreContract } from './metadata-store.contract.js';

metadataStoreContract('filesystem', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'image-ts-meta-'));
  return { store: new FsMetadataStore(dir), reopen: async () => new FsMetadataStore(dir), teardown: () => rm(dir, { recursive: true, force: true }) };
});

metadataStoreContract('in-memory mock', async () => {
  const store = new MemoryMetadataStore();
  return { store, reopen: async () => store, teardown: async () => undefined };
});

describe('FsMetadataStore specifics', () => {
  it('takes over a lock left by a dead process and leaves no temp files', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'image-ts-meta-'));
    await mkdir(join(dir, 'metadata.lock'));
    await writeFile(join(dir, 'metadata.lock', 'pid'), '999999999');
    await new FsMetadataStore(dir).update((s) => {
      s.layers['l'] = { diffId: 'l', size: 1, whiteoutFormat: 'overlay', committedAt: '' };
    });
    assert.deepEqual((await readdir(dir)).sort(), ['metadata.json']);
    await rm(dir, { recursive: true, force: true });
  });
  it('refuses a damaged file with STORE instead of starting over', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'image-ts-meta-'));
    await writeFile(join(dir, 'metadata.json'), '{"version":1,"images":');
    await assert.rejects(new FsMetadataStore(dir).read(), (e: unknown) => e instanceof ImageTsError && e.code === 'STORE');
    await rm(dir, { recursive: true, force: true });
  });
});
