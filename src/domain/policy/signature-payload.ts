import { SignatureInvalidError } from '../errors.js';
import { JsonObject, parseStrictJson, walkExactFields, type Fail, type JsonValue } from './strict-json.js';

/** What a verified signature claims: the manifest digest it signs and the image name it was signed for. */
export interface SignaturePayload {
  /** A syntactically valid digest; whether it is the image's is the caller's check. */
  readonly dockerManifestDigest: string;
  /** As written in the payload; compare it through identityMatches, which normalizes it. */
  readonly dockerReference: string;
  readonly creator: string | undefined;
  /** Unix seconds. */
  readonly timestamp: number | undefined;
}

export const SIMPLE_SIGNING_TYPE = 'atomic container signature';
export const COSIGN_SIGNATURE_TYPE = 'cosign container image signature';

/**
 * The payload of a simple-signing (OpenPGP) signature. Only call this on
 * bytes whose signature has verified. Every object of the critical section
 * has exactly its keys, no key repeats anywhere, and `optional` must be an
 * object.
 */
export function parseSimpleSigningPayload(payload: Uint8Array): SignaturePayload {
  return parsePayload(payload, SIMPLE_SIGNING_TYPE, 'simple signing', false);
}

/** The payload of a cosign signature: as strict, but `optional` may be null (cosign writes null without annotations). */
export function parseCosignPayload(payload: Uint8Array): SignaturePayload {
  return parsePayload(payload, COSIGN_SIGNATURE_TYPE, 'cosign', true);
}

function parsePayload(payload: Uint8Array, expectedType: string, format: string, optionalMayBeNull: boolean): SignaturePayload {
  const failAt =
    (where: string): Fail =>
    (message) =>
      new SignatureInvalidError(`invalid ${format} signature payload: ${where ? `${where}: ` : ''}${message}`);
  const root = parseStrictJson(payload, failAt(''));

  let critical: JsonValue = null;
  let optional: JsonValue = null;
  walkExactFields(root, failAt(''), { critical: (v) => (critical = v), optional: (v) => (optional = v) });

  let type: JsonValue = null;
  let image: JsonValue = null;
  let identity: JsonValue = null;
  walkExactFields(critical, failAt('critical'), {
    type: (v) => (type = v),
    image: (v) => (image = v),
    identity: (v) => (identity = v),
  });
  if (type !== expectedType) throw failAt('critical.type')(`expected ${JSON.stringify(expectedType)}, got ${JSON.stringify(type)}`);

  let digest: JsonValue = null;
  walkExactFields(image, failAt('critical.image'), { 'docker-manifest-digest': (v) => (digest = v) });
  const dockerManifestDigest = requireString(digest, failAt('critical.image.docker-manifest-digest'));
  if (!isDigest(dockerManifestDigest)) {
    throw failAt('critical.image.docker-manifest-digest')(`${JSON.stringify(dockerManifestDigest)} is not a valid digest`);
  }

  let reference: JsonValue = null;
  walkExactFields(identity, failAt('critical.identity'), { 'docker-reference': (v) => (reference = v) });
  const dockerReference = requireString(reference, failAt('critical.identity.docker-reference'));

  const { creator, timestamp } = parseOptional(optional, optionalMayBeNull, failAt('optional'));
  return { dockerManifestDigest, dockerReference, creator, timestamp };
}

/** Unknown optional keys are ignored; the two known ones must be well typed. */
function parseOptional(optional: JsonValue, mayBeNull: boolean, fail: Fail): { creator: string | undefined; timestamp: number | undefined } {
  if (optional === null && mayBeNull) return { creator: undefined, timestamp: undefined };
  if (!(optional instanceof JsonObject)) throw fail('must be a JSON object');
  const creator = optional.get('creator');
  if (creator !== undefined && typeof creator !== 'string') throw fail('creator must be a string');
  const timestamp = optional.get('timestamp');
  if (timestamp !== undefined && (typeof timestamp !== 'number' || !Number.isSafeInteger(timestamp))) {
    throw fail('timestamp must be an integer');
  }
  return { creator, timestamp };
}

function requireString(v: JsonValue, fail: Fail): string {
  if (typeof v !== 'string') throw fail('must be a string');
  return v;
}

/** go-digest's Parse with the algorithms containers/image links in: lowercase hex of the right length. */
const DIGEST_HEX_LENGTH: ReadonlyMap<string, number> = new Map([
  ['sha256', 64],
  ['sha384', 96],
  ['sha512', 128],
]);

function isDigest(s: string): boolean {
  const colon = s.indexOf(':');
  if (colon <= 0) return false;
  const length = DIGEST_HEX_LENGTH.get(s.slice(0, colon));
  const hex = s.slice(colon + 1);
  return length !== undefined && hex.length === length && /^[a-f0-9]+$/.test(hex);
}
