import assert from 'node:assert/strict';
import type { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import type { Descriptor } from '../src/domain/image/descriptor.js';
import { Digest } from '../src/domain/image/digest.js';
import type { ImageTarget } from '../src/domain/image/image-target.js';
import type { ImageSource, ImageSourceFactory, Referrer } from '../src/ports/image-source/image-source.js';
import { SBOM_ARTIFACT_TYPE, type ReferrerContent } from './referrer-artifacts.js';

export interface ImageSourceFixture {
  readonly factory: ImageSourceFactory;
  /** A target holding an image whose manifest is `manifestBytes`. */
  readonly target: ImageTarget;
  readonly manifestBytes: Buffer;
  /** A blob of that image. */
  readonly blob: { readonly descriptor: Descriptor; readonly bytes: Buffer };
  /** A target naming an image that does not exist. */
  readonly missingTarget: ImageTarget;
  /** When given, the referrers cases run: `content` (from referrerContent) is stored beside the image. */
  readonly referrers?: ReferrersFixture | undefined;
  teardown(): Promise<void>;
}

export interface ReferrersFixture {
  /** The image manifest's digest: the subject of `content.referrers`. */
  readonly subject: Digest;
  /** A manifest of the same target that nothing refers to. */
  readonly lonely: Digest;
  readonly content: ReferrerContent;
}

/** The manifest ref a target names: its tag or digest. */
function refOf(target: ImageTarget): string {
  return target.kind === 'registry' ? target.reference.manifestRef : (target.ref ?? 'latest');
}

async function drain(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** The port's method is optional; a fixture that stores referrers needs a source that has it. */
function listReferrers(source: ImageSource, subject: Digest, artifactType: string | undefined): Promise<Referrer[]> {
  if (!source.listReferrers) throw new Error(`${source.description} has no listReferrers`);
  return source.listReferrers(subject, artifactType);
}

async function withSource<T>(factory: ImageSourceFactory, target: ImageTarget, use: (s: ImageSource) => Promise<T>): Promise<T> {
  const source = await factory.open(target);
  try {
    return await use(source);
  } finally {
    await source.close();
  }
}

/** What every ImageSource must do: serve exact manifest and blob bytes, and say NOT_FOUND for what is absent. */
export function imageSourceContract(name: string, setup: () => Promise<ImageSourceFixture>): void {
  describe(`ImageSource contract: ${name}`, () => {
    let fx: ImageSourceFixture;
    before(async () => {
      fx = await setup();
    });
    after(async () => {
      await fx?.teardown();
    });

    it('supports its own targets', () => {
      assert.equal(fx.factory.supports(fx.target), true);
    });

    it('getManifest by tag returns the exact bytes', async () => {
      const got = await withSource(fx.factory, fx.target, (s) => s.getManifest(refOf(fx.target)));
      assert.ok(got.bytes.equals(fx.manifestBytes), 'manifest bytes differ');
    });

    it('getManifest by digest returns the exact bytes', async () => {
      const digest = Digest.of(fx.manifestBytes).toString();
      const got = await withSource(fx.factory, fx.target, (s) => s.getManifest(digest));
      assert.ok(got.bytes.equals(fx.manifestBytes), 'manifest bytes differ');
    });

    it('getBlob streams exactly the bytes', async () => {
      const got = await withSource(fx.factory, fx.target, async (s) => drain(await s.getBlob(fx.blob.descriptor)));
      assert.equal(got.length, fx.blob.bytes.length);
      assert.ok(got.equals(fx.blob.bytes), 'blob bytes differ');
    });

    it('a missing image is NOT_FOUND', async () => {
      await assert.rejects(
        withSource(fx.factory, fx.missingTarget, (s) => s.getManifest(refOf(fx.missingTarget))),
        { code: 'NOT_FOUND' },
      );
    });

    it('a missing blob is NOT_FOUND', async () => {
      const bytes = Buffer.from(`not in any image ${Math.random()}`);
      const descriptor: Descriptor = { mediaType: 'application/octet-stream', digest: Digest.of(bytes), size: bytes.length };
      await assert.rejects(
        withSource(fx.factory, fx.target, async (s) => drain(await s.getBlob(descriptor))),
        { code: 'NOT_FOUND' },
      );
    });

    describe('referrers (OCI 1.1)', () => {
      const sorted = (xs: readonly string[]): string[] => [...xs].sort();
      const referrers = (): ReferrersFixture => {
        if (!fx.referrers) throw new Error('the fixture stores no referrers');
        return fx.referrers;
      };
      const list = (artifactType?: string, subject = referrers().subject) =>
        withSource(fx.factory, fx.target, (s) => listReferrers(s, subject, artifactType));
      /** A fixture that stores no referrers: its source must say the image has none ([], or no listReferrers), not fail. */
      const none = async (): Promise<void> => {
        const got = await withSource(fx.factory, fx.target, async (s) => (s.listReferrers ? s.listReferrers(Digest.of(fx.manifestBytes)) : []));
        assert.deepEqual(got, []);
      };

      it('lists every manifest whose subject is the image, typed by artifactType or else its config', async () => {
        if (!fx.referrers) return none();
        const got = await list();
        const want = referrers().content.referrers;
        assert.deepEqual(sorted(got.map((r) => r.descriptor.digest.toString())), sorted(want.map((r) => r.digest.toString())));
        for (const r of want) {
          const d = got.find((g) => g.descriptor.digest.equals(r.digest));
          assert.equal(d?.artifactType, r.artifactType, `artifactType of ${r.digest}`);
          assert.equal(d?.descriptor.size, r.bytes.length, `size of ${r.digest}`);
        }
      });

      it('filters by artifactType', async () => {
        if (!fx.referrers) return none();
        const got = await list(SBOM_ARTIFACT_TYPE);
        const want = referrers().content.referrers.filter((r) => r.artifactType === SBOM_ARTIFACT_TYPE);
        assert.deepEqual(sorted(got.map((r) => r.descriptor.digest.toString())), sorted(want.map((r) => r.digest.toString())),
          'the artifactType filter let other artifacts through');
        assert.deepEqual(await list('application/vnd.example.nothing-of-this-type'), [], 'the artifactType filter let other artifacts through');
      });

      it('a manifest nothing refers to has no referrers: [], not NOT_FOUND', async () => {
        if (!fx.referrers) return none();
        assert.deepEqual(await list(undefined, referrers().lonely), []);
      });

      it('each listed referrer is served by digest with its exact bytes', async () => {
        if (!fx.referrers) return none();
        await withSource(fx.factory, fx.target, async (s) => {
          for (const { descriptor: d } of await listReferrers(s, referrers().subject, undefined)) {
            const want = referrers().content.referrers.find((r) => r.digest.equals(d.digest));
            const got = await s.getManifest(d.digest.toString());
            assert.ok(want && got.bytes.equals(want.bytes), `referrer ${d.digest} bytes differ`);
          }
        });
      });
    });

    it('description never contains a password', async () => {
      const password = 'contract-secret-Pa55word';
      const source = await fx.factory.open(fx.target, { credentials: { kind: 'basic', username: 'someone', password } });
      try {
        assert.ok(source.description.length > 0);
        assert.ok(!source.description.includes(password), source.description);
      } finally {
        await source.close();
      }
    });
  });
}
