import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { ImageTsError } from '../../src/domain/errors.js';
import { Digest } from '../../src/domain/image/digest.js';
import { Reference } from '../../src/domain/image/reference.js';
import { FallbackImageSource, type SourceCandidate } from '../../src/domain/pull/fallback-source.js';
import type { ImageSource } from '../../src/ports/image-source/image-source.js';

function candidate(name: string, behaviour: 'ok' | 'not-found' | 'down', log: string[]): SourceCandidate {
  const source: ImageSource = {
    description: name,
    getManifest: async (ref) => {
      log.push(`${name} manifest ${ref}`);
      if (behaviour === 'not-found') throw new ImageTsError('NOT_FOUND', 'manifest unknown');
      if (behaviour === 'down') throw new ImageTsError('NETWORK', 'connection refused');
      return { bytes: Buffer.from(name), mediaType: 'application/vnd.oci.image.manifest.v1+json' };
    },
    getBlob: async () => {
      log.push(`${name} blob`);
      return Readable.from([Buffer.from(name)]);
    },
    close: async () => {
      log.push(`${name} closed`);
    },
    ...(name === 'mirror.b' ? {
      listReferrers: async (subject: Digest, artifactType?: string) => {
        log.push(`${name} referrers ${subject} ${artifactType ?? '*'}`);
        return [];
      },
    } : {}),
  };
  return { physical: Reference.parse(`${name}/repo:v1`), description: name, open: async () => source };
}

describe('FallbackImageSource', () => {
  it('uses the first candidate whose manifest fetch succeeds for everything after', async () => {
    const log: string[] = [];
    const s = new FallbackImageSource([candidate('mirror.a', 'down', log), candidate('mirror.b', 'ok', log), candidate('primary', 'ok', log)]);
    assert.equal((await s.getManifest('v1')).bytes.toString(), 'mirror.b');
    await s.getManifest('sha256:x');
    await s.getBlob({ mediaType: 'x', digest: Digest.of(Buffer.from('x'), 'sha256'), size: 1 });
    assert.equal(s.physicalReference()?.toString(), 'mirror.b/repo:v1');
    assert.deepEqual(log, ['mirror.a manifest v1', 'mirror.a closed', 'mirror.b manifest v1', 'mirror.b manifest sha256:x', 'mirror.b blob']);
  });

  it('reports every source when all fail, with the primary\'s code', async () => {
    const log: string[] = [];
    const s = new FallbackImageSource([candidate('mirror.a', 'down', log), candidate('primary', 'not-found', log)]);
    await assert.rejects(s.getManifest('v1'), (e: unknown) =>
      e instanceof ImageTsError && e.code === 'NOT_FOUND' && /mirror\.a: connection refused; primary: manifest unknown/.test(e.message));
  });

  it('asks the chosen source for referrers; one that cannot have them has none', async () => {
    const log: string[] = [];
    const subject = Digest.of(Buffer.from('s'), 'sha256');
    const s = new FallbackImageSource([candidate('mirror.b', 'ok', log), candidate('primary', 'ok', log)]);
    await s.getManifest('v1');
    assert.deepEqual(await s.listReferrers(subject, 'application/x'), []);
    assert.deepEqual(log, ['mirror.b manifest v1', `mirror.b referrers ${subject} application/x`]);
    const p = new FallbackImageSource([candidate('primary', 'ok', [])]);
    await p.getManifest('v1');
    assert.deepEqual(await p.listReferrers(subject), []);
  });

  it('refuses a blob before any manifest', async () => {
    const s = new FallbackImageSource([candidate('primary', 'ok', [])]);
    assert.throws(() => s.getBlob({ mediaType: 'x', digest: Digest.of(Buffer.from('x'), 'sha256'), size: 1 }), (e: unknown) => e instanceof ImageTsError && e.code === 'INTERNAL');
  });
});
