import type { Referrer } from '../../ports/image-source/image-source.js';
import { InvalidManifestError } from '../errors.js';
import { Descriptor } from './descriptor.js';
import type { Digest } from './digest.js';
import { isObject, optionalString, optionalStringMap, parseJsonObject } from './json-fields.js';
import { MediaType } from './media-types.js';

/**
 * OCI 1.1 referrers: manifests whose `subject` names another manifest
 * (signatures, SBOMs, attestations). Registries list them at
 * `/v2/<name>/referrers/<digest>`; registries without that API hold the same
 * list as an image index tagged `<alg>-<hex>` (the "referrers tag schema").
 */

/** More descriptors than this in one referrers list (all pages together) is refused rather than followed. */
export const MAX_REFERRERS = 4096;
/** Largest referrers list or referrer manifest read. c/image's manifest cap. */
export const MAX_REFERRERS_BYTES = 4 << 20;
/** Pages of a paginated referrers answer followed at most. */
export const MAX_REFERRERS_PAGES = 16;

const fail = (m: string): Error => new InvalidManifestError(m);

/**
 * The referrers tag schema's tag for `subject`: `<alg>-<ref>`, the algorithm
 * and encoded digest truncated to 32 and 64 characters so it is a valid tag.
 */
export function referrersTag(subject: Digest): string {
  return `${subject.algorithm.slice(0, 32)}-${subject.encoded.slice(0, 64)}`;
}

/**
 * The descriptors of a referrers list: the API's answer or the tag schema's
 * index. It must be an OCI image index; each entry a descriptor. The list is
 * untrusted and only says where to look: every manifest it names is fetched
 * by digest and checked before use.
 */
export function parseReferrersIndex(bytes: Uint8Array, contentType: string | undefined, what: string): Descriptor[] {
  const doc = parseJsonObject(bytes, what, fail);
  if (doc['schemaVersion'] !== 2) throw fail(`${what}: schemaVersion must be 2`);
  const declared = optionalString(doc, 'mediaType', what, fail);
  const given = contentType?.split(';')[0]?.trim().toLowerCase();
  const transport = given === 'application/json' || given === 'application/octet-stream' || given === '' ? undefined : given;
  if (declared !== undefined && transport !== undefined && declared !== transport) {
    throw fail(`${what}: mediaType ${declared} disagrees with Content-Type ${transport}`);
  }
  const type = declared ?? transport;
  if (type !== undefined && type !== MediaType.OciIndex) throw fail(`${what} has media type ${type}, not an OCI image index`);
  const list = doc['manifests'];
  if (!Array.isArray(list)) throw fail(`${what}: manifests must be an array`);
  if (list.length > MAX_REFERRERS) throw fail(`${what} lists ${list.length} referrers, more than the ${MAX_REFERRERS} accepted`);
  return list.map((m, i) => Descriptor.parse(m, `${what}: manifests[${i}]`));
}

/** Entries of `artifactType` only; all of them when no type is asked for. */
export function filterReferrers(list: readonly Descriptor[], artifactType: string | undefined): Descriptor[] {
  return artifactType === undefined ? [...list] : list.filter((d) => d.artifactType === artifactType);
}

/** The referrers of several lists (pages, or the API and the tag), each digest once, first occurrence kept. */
export function mergeReferrers(lists: readonly (readonly Descriptor[])[]): Descriptor[] {
  const seen = new Set<string>();
  const out: Descriptor[] = [];
  for (const list of lists) {
    for (const d of list) {
      const key = d.digest.toString();
      if (seen.has(key)) continue;
      seen.add(key);
      out.push(d);
    }
  }
  if (out.length > MAX_REFERRERS) throw fail(`the referrers list has ${out.length} entries, more than the ${MAX_REFERRERS} accepted`);
  return out;
}

/** What a referrer manifest says about itself: its subject, and its artifact type (artifactType, else config.mediaType). */
export interface ReferrerManifest {
  readonly subject: Descriptor | undefined;
  readonly artifactType: string | undefined;
  readonly layers: readonly Descriptor[];
  readonly annotations: Readonly<Record<string, string>> | undefined;
}

/**
 * Reads a manifest for its referrer fields only. The main Manifest parser is
 * not used: it rightly refuses artifact configs and layers it cannot unpack.
 */
export function parseReferrerManifest(bytes: Uint8Array, what: string): ReferrerManifest {
  const doc = parseJsonObject(bytes, what, fail);
  if (doc['schemaVersion'] !== 2) throw fail(`${what}: schemaVersion must be 2`);
  const mediaType = optionalString(doc, 'mediaType', what, fail);
  if (mediaType !== undefined && mediaType !== MediaType.OciManifest) throw fail(`${what} has media type ${mediaType}, not an OCI image manifest`);
  if (doc['manifests'] !== undefined) throw fail(`${what}: an image manifest must not have manifests`);
  const subject = doc['subject'] === undefined || doc['subject'] === null ? undefined : Descriptor.parse(doc['subject'], `${what}: subject`);
  const config = isObject(doc['config']) ? Descriptor.parse(doc['config'], `${what}: config`) : undefined;
  const layersValue = doc['layers'] ?? [];
  if (!Array.isArray(layersValue)) throw fail(`${what}: layers must be an array`);
  if (layersValue.length > MAX_REFERRERS) throw fail(`${what} has ${layersValue.length} layers`);
  return {
    subject,
    artifactType: optionalString(doc, 'artifactType', what, fail) ?? config?.mediaType,
    layers: layersValue.map((l, i) => Descriptor.parse(l, `${what}: layers[${i}]`)),
    annotations: optionalStringMap(doc, 'annotations', what, fail),
  };
}

/** The descriptor a referrers list holds for a referrer manifest, as the API builds it. */
export function referrerDescriptor(manifestDigest: Digest, size: number, manifest: ReferrerManifest): Descriptor {
  return {
    mediaType: MediaType.OciManifest,
    digest: manifestDigest,
    size,
    ...(manifest.artifactType !== undefined ? { artifactType: manifest.artifactType } : {}),
    ...(manifest.annotations !== undefined ? { annotations: manifest.annotations } : {}),
  };
}

/** The port's shape of a referrers list: each descriptor with its artifactType beside it. */
export function asReferrers(list: readonly Descriptor[]): Referrer[] {
  return list.map((descriptor) => ({ descriptor, artifactType: descriptor.artifactType }));
}
