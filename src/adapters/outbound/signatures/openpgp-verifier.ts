import type { Key, Message } from 'openpgp';
import { SignatureInvalidError } from '../../../domain/errors.js';
import type { SimpleSigningVerifier, VerifiedSimpleSignature } from '../../../ports/signatures/signature-verifier.js';
import { lazyRequire } from '../lazy.js';
import { openpgp } from '../openpgp-module.js';

const zlib = lazyRequire<typeof import('node:zlib')>('node:zlib');


/** Largest signed message, after decompression. A simple-signing payload is a few hundred bytes. */
export const MAX_SIGNED_MESSAGE_BYTES = 4 << 20;

// RFC 4880 packet tags.
const TAG = {
  pkesk: 1,
  signature: 2,
  skesk: 3,
  onePassSignature: 4,
  compressed: 8,
  symEncrypted: 9,
  marker: 10,
  literal: 11,
  seipd: 18,
  aead: 20,
} as const;
const ENCRYPTED_TAGS: ReadonlySet<number> = new Set([TAG.pkesk, TAG.skesk, TAG.symEncrypted, TAG.seipd, TAG.aead]);

// Parsed keyrings by buffer: a policy hands the same key material to every signature.
const parsedKeyrings = new WeakMap<Buffer, Promise<Key[]>>();

const invalid = (reason: string): SignatureInvalidError => new SignatureInvalidError(`simple signature: ${reason}`);

/**
 * Simple signing's OpenPGP layer (containers/image, gpgme semantics): the
 * signature is a binary, non-detached signed message —
 * `[compressed]{one-pass signature, literal data, signature}` — with exactly
 * one signature, made by a key of the trusted keyrings, valid now.
 */
export class OpenPgpSimpleSigningVerifier implements SimpleSigningVerifier {
  /** `now` is for tests; expiry of signatures and keys is judged against it. */
  constructor(private readonly now: () => Date = () => new Date()) {}

  async verify(signature: Buffer, keyrings: readonly Buffer[]): Promise<VerifiedSimpleSignature> {
    const inner = unwrapMessage(signature);
    const pg = await openpgp();
    let message: Message<Uint8Array>;
    try {
      message = await pg.readMessage({ binaryMessage: inner });
    } catch (err) {
      throw invalid(`not an OpenPGP message (${short(err)})`);
    }
    const keys = (await Promise.all(keyrings.map(keyringOf))).flat();
    const now = this.now();
    // One result per binary/text signature packet; the structure check allowed exactly one signature.
    let result: Awaited<ReturnType<Message<Uint8Array>['verify']>>[number] | undefined;
    try {
      [result] = await message.verify(keys, now);
    } catch (err) {
      throw invalid(`not a verifiable signed message (${short(err)})`);
    }
    if (!result) throw invalid('no verifiable signature (unsupported signature version, e.g. v3, or not over binary/text data)');
    const issuer = result.keyID;
    // The same key openpgp picked: the first whose primary key or a subkey has the issuer's key ID.
    const signer = keys.find((k) => k.getKeys(issuer).length > 0);
    if (!signer) throw invalid(`signed by unknown key ${issuer.toHex().toUpperCase()}`);
    try {
      await result.verified;
    } catch (err) {
      const why = short(err);
      if (/signature is expired/i.test(why)) {
        const at = (await result.signature.catch(() => undefined))?.packets[0]?.getExpirationTime();
        throw invalid(`signature expired${at instanceof Date ? ` on ${at.toISOString()}` : ''}`);
      }
      if (/digest did not match|verification failed/i.test(why)) throw invalid('bad signature');
      throw invalid(`rejected for key ${signer.getFingerprint().toUpperCase()}: ${why}`);
    }
    // openpgp judges the key at signing time; gpg also refuses a key that has since expired or been revoked.
    try {
      await signer.getSigningKey(issuer, now);
    } catch (err) {
      throw invalid(`signing key ${signer.getFingerprint().toUpperCase()} is no longer valid: ${short(err)}`);
    }
    const data = message.getLiteralData();
    if (!(data instanceof Uint8Array)) throw invalid('no literal data');
    return { payload: Buffer.from(data), keyIdentity: signer.getFingerprint().toUpperCase() };
  }
}

/**
 * Checks the packet structure and undoes the (bounded) compression, so
 * openpgp only ever sees `{one-pass, literal, signature}` sized within limits.
 */
function unwrapMessage(signature: Buffer): Uint8Array {
  if (signature.length === 0) throw invalid('empty');
  if (signature.length > MAX_SIGNED_MESSAGE_BYTES) throw invalid(`larger than ${MAX_SIGNED_MESSAGE_BYTES} bytes`);
  if ((signature[0]! & 0x80) === 0) {
    const text = signature.subarray(0, 64).toString('latin1').trimStart();
    if (text.startsWith('-----BEGIN PGP SIGNED MESSAGE')) throw invalid('cleartext signatures are not accepted');
    if (text.startsWith('-----BEGIN PGP')) throw invalid('ASCII-armored signatures are not accepted');
    throw invalid('not an OpenPGP message');
  }
  let packets = readPackets(signature);
  let bytes: Uint8Array = signature;
  if (packets[0]?.tag === TAG.compressed) {
    if (packets.length !== 1) throw invalid('data after the compressed packet');
    bytes = decompress(packets[0].body);
    packets = readPackets(bytes);
  }
  checkStructure(packets.map((p) => p.tag));
  return bytes;
}

function checkStructure(tags: readonly number[]): void {
  if (tags.some((t) => ENCRYPTED_TAGS.has(t))) throw invalid('encrypted data is not a signed message');
  if (tags.includes(TAG.compressed)) throw invalid('nested compressed data');
  const unexpected = tags.find((t) => t !== TAG.signature && t !== TAG.onePassSignature && t !== TAG.literal && t !== TAG.marker);
  if (unexpected !== undefined) throw invalid(`unexpected packet type ${unexpected}`);
  const literals = tags.filter((t) => t === TAG.literal).length;
  const signatures = tags.filter((t) => t === TAG.signature).length;
  if (literals === 0) throw invalid(signatures > 0 ? 'detached signatures are not accepted' : 'no signed data');
  if (literals > 1) throw invalid('more than one literal data packet');
  if (signatures === 0) throw invalid('unsigned literal data');
  // gpgme-based verification accepts exactly one signature per message.
  if (signatures > 1) throw invalid(`${signatures} signatures in one message, expected 1`);
}

interface Packet {
  readonly tag: number;
  readonly body: Buffer;
}

/** Splits a packet sequence (old and new formats, partial body lengths) into tag + body. */
function readPackets(buf: Uint8Array): Packet[] {
  const bytes = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  const out: Packet[] = [];
  let pos = 0;
  const need = (n: number): void => {
    if (pos + n > bytes.length) throw invalid('truncated OpenPGP packet');
  };
  while (pos < bytes.length) {
    const ctb = bytes[pos++]!;
    if ((ctb & 0x80) === 0) throw invalid('not an OpenPGP packet sequence');
    if ((ctb & 0x40) === 0) {
      // Old format: tag in bits 5..2, length type in bits 1..0.
      const tag = (ctb >> 2) & 0x0f;
      const lengthType = ctb & 0x03;
      let len: number;
      if (lengthType === 3) {
        len = bytes.length - pos; // indeterminate: to the end of the data
      } else {
        const n = 1 << lengthType;
        need(n);
        len = bytes.readUIntBE(pos, n);
        pos += n;
      }
      need(len);
      out.push({ tag, body: bytes.subarray(pos, pos + len) });
      pos += len;
      continue;
    }
    const tag = ctb & 0x3f;
    const chunks: Buffer[] = [];
    for (;;) {
      need(1);
      const o1 = bytes[pos++]!;
      let len: number;
      let partial = false;
      if (o1 < 192) {
        len = o1;
      } else if (o1 < 224) {
        need(1);
        len = ((o1 - 192) << 8) + bytes[pos++]! + 192;
      } else if (o1 === 255) {
        need(4);
        len = bytes.readUInt32BE(pos);
        pos += 4;
      } else {
        len = 1 << (o1 & 0x1f);
        partial = true;
      }
      need(len);
      chunks.push(bytes.subarray(pos, pos + len));
      pos += len;
      if (!partial) break;
    }
    out.push({ tag, body: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks) });
  }
  return out;
}

/** A compressed data packet's contents, refused beyond MAX_SIGNED_MESSAGE_BYTES. */
function decompress(body: Buffer): Buffer {
  const algorithm = body[0];
  const data = body.subarray(1);
  const opts = { maxOutputLength: MAX_SIGNED_MESSAGE_BYTES };
  try {
    switch (algorithm) {
      case 0:
        return data;
      case 1:
        return zlib().inflateRawSync(data, opts);
      case 2:
        return zlib().inflateSync(data, opts);
      default:
        throw invalid(`unsupported compression algorithm ${algorithm ?? 'none'}`);
    }
  } catch (err) {
    if (err instanceof SignatureInvalidError) throw err;
    if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
      throw invalid(`decompresses to more than ${MAX_SIGNED_MESSAGE_BYTES} bytes`);
    }
    throw invalid('corrupt compressed data');
  }
}

function keyringOf(ring: Buffer): Promise<Key[]> {
  let p = parsedKeyrings.get(ring);
  if (!p) {
    p = parseKeyring(ring);
    p.catch(() => parsedKeyrings.delete(ring));
    parsedKeyrings.set(ring, p);
  }
  return p;
}

const ARMOR_BEGIN = /-----BEGIN PGP (?:PUBLIC|PRIVATE) KEY BLOCK-----[\s\S]*?-----END PGP (?:PUBLIC|PRIVATE) KEY BLOCK-----/g;

/** Binary keyring, or armored text holding one or more key blocks. */
async function parseKeyring(ring: Buffer): Promise<Key[]> {
  const pg = await openpgp();
  try {
    if ((ring[0] ?? 0) & 0x80) return await pg.readKeys({ binaryKeys: new Uint8Array(ring) });
    const blocks = ring.toString('utf8').match(ARMOR_BEGIN) ?? [];
    if (blocks.length === 0) throw new Error('no key block');
    return (await Promise.all(blocks.map((armoredKeys) => pg.readKeys({ armoredKeys })))).flat();
  } catch (err) {
    throw invalid(`a trusted keyring is not an OpenPGP keyring (${short(err)})`);
  }
}

/** An openpgp error as a short single line. */
function short(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return message.replace(/\s+/g, ' ').trim().slice(0, 160);
}
