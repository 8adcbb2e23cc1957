import assert from 'node:assert/strict';
import { createCipheriv, randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { EMPTY_DECRYPT_CONFIG, type DecryptConfig } from '../src/domain/encryption/decrypt-config.js';
import { keyUnwrapInput, parseKeyUnwrapOutput } from '../src/domain/encryption/key-provider-protocol.js';
import { ImageTsError } from '../src/domain/errors.js';
import type { KeyProvider } from '../src/ports/keys/key-provider.js';

/** The one key-encryption key a fixture's provider can reach. */
export interface HeldKey {
  /** `kbs:///repo/type/tag` */
  readonly kid: string;
  readonly kek: Buffer;
}

export interface KeyProviderFixture {
  readonly provider: KeyProvider;
  /** The same transport, configured for an endpoint where nothing answers. */
  readonly deadProvider: KeyProvider;
  teardown(): Promise<void>;
}

/** A CoCo AnnotationPacket (v1 key order) wrapping privopts under kek with AES-256-GCM. */
export function wrapPrivOpts(kid: string, kek: Buffer, privopts: Buffer): Buffer {
  const iv = randomBytes(12);
  const c = createCipheriv('aes-256-gcm', kek, iv);
  const sealed = Buffer.concat([c.update(privopts), c.final(), c.getAuthTag()]);
  return Buffer.from(JSON.stringify({ kid, wrapped_data: sealed.toString('base64'), iv: iv.toString('base64'), wrap_type: 'A256GCM' }));
}

/** Private options as ocicrypt writes them: a fresh 32-byte symkey and a 16-byte nonce. */
export function samplePrivOpts(): Buffer {
  return Buffer.from(JSON.stringify({
    symkey: randomBytes(32).toString('base64'),
    digest: `sha256:${randomBytes(32).toString('hex')}`,
    cipheroptions: { nonce: randomBytes(16).toString('base64') },
  }));
}

const code = (c: string) => (e: unknown): boolean => e instanceof ImageTsError && e.code === c;

/**
 * What every ocicrypt key-provider transport must do for a CoCo packet, so
 * that cmd, gRPC, ttrpc and in-process providers are interchangeable.
 */
export function keyProviderContract(name: string, make: (held: HeldKey) => Promise<KeyProviderFixture>): void {
  describe(`KeyProvider contract: ${name}`, () => {
    const held: HeldKey = { kid: 'kbs:///default/key/1', kek: randomBytes(32) };

    const unwrap = async (provider: KeyProvider, item: Buffer, dc: DecryptConfig = EMPTY_DECRYPT_CONFIG, signal?: AbortSignal): Promise<Buffer> =>
      parseKeyUnwrapOutput(await provider.unwrapKey(keyUnwrapInput(item, dc), signal), provider.name);

    it('unwraps the private options of a packet whose KEK it can reach', async () => {
      const f = await make(held);
      try {
        const privopts = samplePrivOpts();
        assert.deepEqual(await unwrap(f.provider, wrapPrivOpts(held.kid, held.kek, privopts)), privopts);
      } finally {
        await f.teardown();
      }
    });

    it('passes decrypt-config parameters through without choking on them', async () => {
      const f = await make(held);
      try {
        const privopts = samplePrivOpts();
        const dc: DecryptConfig = { ...EMPTY_DECRYPT_CONFIG, providers: { [f.provider.name]: [Buffer.from('offline_fs_kbc::null')] } };
        assert.deepEqual(await unwrap(f.provider, wrapPrivOpts(held.kid, held.kek, privopts), dc), privopts);
      } finally {
        await f.teardown();
      }
    });

    it('ignores the host part of the kid', async () => {
      const f = await make(held);
      try {
        const privopts = samplePrivOpts();
        assert.deepEqual(await unwrap(f.provider, wrapPrivOpts('kbs://kbs.example:8080/default/key/1', held.kek, privopts)), privopts);
      } finally {
        await f.teardown();
      }
    });

    it('serves concurrent unwraps, each with its own answer', async () => {
      const f = await make(held);
      try {
        const opts = Array.from({ length: 6 }, () => samplePrivOpts());
        const got = await Promise.all(opts.map((p) => unwrap(f.provider, wrapPrivOpts(held.kid, held.kek, p))));
        got.forEach((g, i) => assert.deepEqual(g, opts[i]));
      } finally {
        await f.teardown();
      }
    });

    it('answers a kid the broker does not hold with KEY_BROKER_DENIED and no key material', async () => {
      const f = await make(held);
      try {
        const privopts = samplePrivOpts();
        const otherKek = randomBytes(32);
        const item = wrapPrivOpts('kbs:///default/key/missing', otherKek, privopts);
        await assert.rejects(unwrap(f.provider, item), (e: unknown) => {
          assert.ok(code('KEY_BROKER_DENIED')(e), String(e));
          const m = (e as Error).message;
          for (const secret of [held.kek, otherKek, privopts, item]) assert.ok(!m.includes(secret.toString('base64')), m);
          return true;
        });
      } finally {
        await f.teardown();
      }
    });

    it('reports an endpoint where nothing answers as KEY_BROKER_UNAVAILABLE', async () => {
      const f = await make(held);
      try {
        await assert.rejects(unwrap(f.deadProvider, wrapPrivOpts(held.kid, held.kek, samplePrivOpts())), code('KEY_BROKER_UNAVAILABLE'));
      } finally {
        await f.teardown();
      }
    });

    it('stops when the signal is aborted', async () => {
      const f = await make(held);
      try {
        const c = new AbortController();
        c.abort(new Error('cancelled'));
        await assert.rejects(unwrap(f.provider, wrapPrivOpts(held.kid, held.kek, samplePrivOpts()), EMPTY_DECRYPT_CONFIG, c.signal));
      } finally {
        await f.teardown();
      }
    });
  });
}
