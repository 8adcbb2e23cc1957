import { InvalidManifestError } from '../errors.js';
import { Digest } from './digest.js';
import { isObject, optionalString, optionalStringArray, optionalStringMap, requiredString, type JsonObject } from './json-fields.js';
import { Platform } from './platform.js';

/** An OCI content descriptor: what to fetch, how big it is, and how to check it. */
export interface Descriptor {
  readonly mediaType: string;
  readonly digest: Digest;
  readonly size: number;
  readonly urls?: readonly string[] | undefined;
  readonly annotations?: Readonly<Record<string, string>> | undefined;
  readonly platform?: Platform | undefined;
  /** OCI 1.1: the artifact's type, on referrers lists and artifact manifests. */
  readonly artifactType?: string | undefined;
}

const fail = (m: string): Error => new InvalidManifestError(m);

export const Descriptor = {
  parse(value: unknown, what: string): Descriptor {
    if (!isObject(value)) throw fail(`${what} is not an object`);
    const mediaType = requiredString(value, 'mediaType', what, fail);
    const digestText = requiredString(value, 'digest', what, fail);
    let digest: Digest;
    try {
      digest = Digest.parse(digestText);
    } catch (err) {
      throw fail(`${what}.digest: ${(err as Error).message}`);
    }
    const size = value['size'];
    if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) {
      throw fail(`${what}.size must be a non-negative integer`);
    }
    const platformValue = value['platform'];
    let platform: Platform | undefined;
    if (platformValue !== undefined && platformValue !== null) {
      if (!isObject(platformValue)) throw fail(`${what}.platform is not an object`);
      platform = parsePlatform(platformValue, `${what}.platform`);
    }
    const artifactType = optionalString(value, 'artifactType', what, fail);
    return {
      mediaType,
      digest,
      size,
      urls: optionalStringArray(value, 'urls', what, fail),
      annotations: optionalStringMap(value, 'annotations', what, fail),
      platform,
      // Only when present: descriptors of ordinary images stay as they were (deep-equal in tests and records).
      ...(artifactType !== undefined ? { artifactType } : {}),
    };
  },
};

function parsePlatform(o: JsonObject, what: string): Platform {
  return {
    os: requiredString(o, 'os', what, fail),
    architecture: requiredString(o, 'architecture', what, fail),
    variant: optionalString(o, 'variant', what, fail),
  };
}
