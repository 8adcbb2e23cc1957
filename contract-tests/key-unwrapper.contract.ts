import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { EMPTY_DECRYPT_CONFIG, mergeDecryptConfigs, type DecryptConfig } from '../src/domain/encryption/decrypt-config.js';
import { KEYS_ANNOTATION_PREFIX, LayerEncryption, PUBOPTS_ANNOTATION } from '../src/domain/encryption/layer-encryption.js';
import { LayerKeys } from '../src/domain/encryption/layer-keys.js';
import { ImageTsError } from '../src/domain/errors.js';
import { Descriptor } from '../src/domain/image/descriptor.js';
import { Digest } from '../src/domain/image/digest.js';
import type { KeyUnwrapper } from '../src/ports/keys/key-unwrapper.js';
import { encryptBlob } from '../test/helpers/encryption.js';

export interface KeyUnwrapperFixture {
  readonly unwrapper: KeyUnwrapper;
  /** The keys of a pull that can open what `wrap` makes (private keys, or OpenPGP secret keyrings). */
  readonly held: DecryptConfig;
  /** Keys of the same kind, none of which can open what `wrap` makes. */
  readonly other: DecryptConfig;
  /** `privopts` wrapped for the held key, as an encrypting tool (skopeo, ocicrypt) writes one recipient item of this scheme. */
  wrap(privopts: Buffer): Promise<Buffer>;
  /** The item changed where its integrity protection covers it (the sealed content or its tag). */
  tamper(item: Buffer): Buffer;
  teardown(): Promise<void>;
}

/** Private options as ocicrypt writes them, for a layer whose plaintext is `plain`. */
function privateOptions(plain = randomBytes(64)): { privopts: Buffer; pubopts: string } {
  const { privopts, pubopts } = encryptBlob(plain, Digest.of(plain).toString());
  return { privopts, pubopts };
}

/** What of a config must never show in a message: key bytes as text, base64 and hex, PEM body lines, passwords. */
function secretsOf(dc: DecryptConfig): string[] {
  const out: string[] = [];
  for (const k of [...dc.privateKeys, ...dc.gpgPrivateKeys]) {
    out.push(k.bytes.toString('base64').slice(0, 24), k.bytes.toString('hex').slice(0, 24));
    out.push(...k.bytes.toString('latin1').split(/\r?\n/).filter((l) => /^[A-Za-z0-9+/=]{40,}$/.test(l)));
    if (k.password?.length) out.push(k.password.toString('utf8'));
  }
  return out;
}

function assertNoSecrets(message: string, secrets: readonly string[]): void {
  for (const s of secrets) assert.ok(!message.includes(s), `the message echoes key material: ${message.slice(0, 200)}`);
  assert.doesNotMatch(message, /\n/);
}

/**
 * What image-ts relies on from a local key-unwrap scheme (jwe, pkcs7, pgp):
 * it opens what was wrapped for a key of the pull, tells "not my key" from a
 * broken item, never yields the content of a tampered one, and never echoes
 * a key. LayerKeys turns "no key fits" into MISSING_KEY.
 */
export function keyUnwrapperContract(name: string, make: () => Promise<KeyUnwrapperFixture>): void {
  describe(`KeyUnwrapper contract: ${name}`, () => {
    let f: KeyUnwrapperFixture;
    before(async () => {
      f = await make();
    });
    after(async () => {
      await f?.teardown();
    });

    it('names one scheme as the layer annotation spells it, and has keys only when the config holds some', () => {
      // `provider.<name>` belongs to key providers; a dot would make the annotation ambiguous.
      assert.match(f.unwrapper.scheme, /^[a-z0-9]+$/);
      assert.equal(f.unwrapper.hasKeys(f.held), true);
      assert.equal(f.unwrapper.hasKeys(EMPTY_DECRYPT_CONFIG), false);
    });

    it('unwraps what was wrapped for a key it holds, byte for byte', async () => {
      const { privopts } = privateOptions();
      assert.deepEqual(await f.unwrapper.unwrap(await f.wrap(privopts), f.held), privopts);
    });

    it('finds its key among other keys of the config, wherever it is listed', async () => {
      const { privopts } = privateOptions();
      const item = await f.wrap(privopts);
      assert.deepEqual(await f.unwrapper.unwrap(item, mergeDecryptConfigs(f.other, f.held)), privopts);
      assert.deepEqual(await f.unwrapper.unwrap(item, mergeDecryptConfigs(f.held, f.other)), privopts);
    });

    it('answers an item for keys it does not hold with undefined, so that the next recipient is tried', async () => {
      const item = await f.wrap(privateOptions().privopts);
      assert.equal(await f.unwrapper.unwrap(item, f.other), undefined);
      assert.equal(await f.unwrapper.unwrap(item, EMPTY_DECRYPT_CONFIG), undefined);
    });

    it('never yields the content of a tampered item: undefined or DECRYPT_FAILED', async () => {
      const item = await f.wrap(privateOptions().privopts);
      const tampered = f.tamper(item);
      assert.ok(!tampered.equals(item), 'the fixture changed the item');
      let got: Buffer | undefined;
      try {
        got = await f.unwrapper.unwrap(tampered, f.held);
      } catch (err) {
        assert.ok(err instanceof ImageTsError && err.code === 'DECRYPT_FAILED', `a refusal is DECRYPT_FAILED, not ${String(err)}`);
        assertNoSecrets(err.message, secretsOf(f.held));
        return;
      }
      assert.equal(got, undefined, 'a tampered item yielded content');
    });

    it('refuses an item that is not of its scheme with DECRYPT_FAILED, echoing no key material', async () => {
      const secrets = secretsOf(mergeDecryptConfigs(f.held, f.other));
      const notItems = [
        Buffer.from('not a wrapped key at all'),
        Buffer.alloc(0),
        // A CoCo key-provider packet: another scheme's item.
        Buffer.from(JSON.stringify({ kid: 'kbs:///default/key/1', wrapped_data: randomBytes(48).toString('base64'), iv: randomBytes(12).toString('base64'), wrap_type: 'A256GCM' })),
      ];
      for (const item of notItems) {
        await assert.rejects(f.unwrapper.unwrap(item, f.held), (err: unknown) => {
          assert.ok(err instanceof ImageTsError, `not an ImageTsError: ${String(err)}`);
          assert.equal(err.code, 'DECRYPT_FAILED', err.message);
          assertNoSecrets(err.message, secrets);
          return true;
        }, JSON.stringify(item.toString('latin1').slice(0, 30)));
      }
    });

    it('unwraps concurrently, each item to its own options, and the config stays usable', async () => {
      const all = Array.from({ length: 4 }, () => privateOptions().privopts);
      const items = await Promise.all(all.map((p) => f.wrap(p)));
      const got = await Promise.all(items.map((item) => f.unwrapper.unwrap(item, f.held)));
      got.forEach((g, i) => assert.deepEqual(g, all[i]));
      // Nothing of the config was wiped or used up by the first round.
      assert.deepEqual(await f.unwrapper.unwrap(items[0]!, f.held), all[0]);
    });

    it('through LayerKeys: the held key opens the layer; other keys give MISSING_KEY naming the scheme, and no key', async () => {
      const { privopts, pubopts } = privateOptions();
      const item = await f.wrap(privopts);
      const desc = Descriptor.parse({
        mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip+encrypted',
        digest: Digest.of(item).toString(),
        size: 1,
        annotations: { [`${KEYS_ANNOTATION_PREFIX}${f.unwrapper.scheme}`]: item.toString('base64'), [PUBOPTS_ANNOTATION]: pubopts },
      }, 'layer');
      const enc = LayerEncryption.of(desc);
      const keys = new LayerKeys([f.unwrapper], new Map());
      const opened = await keys.unwrap('layer', enc, f.held);
      assert.deepEqual(opened.symkey, Buffer.from((JSON.parse(privopts.toString()) as { symkey: string }).symkey, 'base64'));
      await assert.rejects(keys.unwrap('layer', enc, f.other), (err: unknown) => {
        assert.ok(err instanceof ImageTsError && err.code === 'MISSING_KEY', String(err));
        assert.match(err.message, new RegExp(`\\b${f.unwrapper.scheme}\\b`));
        assertNoSecrets(err.message, [...secretsOf(f.other), privopts.toString('base64').slice(0, 24)]);
        return true;
      });
    });
  });
}
