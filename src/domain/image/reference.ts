import { InvalidReferenceError } from '../errors.js';
import { Digest } from './digest.js';

const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const DOMAIN_RE = new RegExp(`^(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|\\[[0-9a-fA-F:]+\\])(?::[0-9]+)?$`);
const PATH_COMPONENT_RE = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG_RE = /^[\w][\w.-]{0,127}$/;
const ANCHORED_HEX64 = /^[a-f0-9]{64}$/;
const MAX_NAME_LENGTH = 255;

/** A registry host as the reference grammar has it: `host[:port]`, or a bracketed IPv6 address. */
export function isReferenceDomain(s: string): boolean {
  return DOMAIN_RE.test(s);
}

/** One lowercase repository path component, `[a-z0-9]+` joined by `.`, `_`, `__` or dashes. */
export function isReferencePathComponent(s: string): boolean {
  return PATH_COMPONENT_RE.test(s);
}

export const DEFAULT_DOMAIN = 'docker.io';
export const DOCKER_HUB_API_HOST = 'registry-1.docker.io';
const LEGACY_DEFAULT_DOMAIN = 'index.docker.io';
export const DEFAULT_TAG = 'latest';

/**
 * A normalized docker reference, as distribution/reference's ParseNormalizedNamed
 * reads user input: `busybox` is `docker.io/library/busybox:latest`.
 */
export class Reference {
  private constructor(
    readonly domain: string,
    readonly path: string,
    readonly tag: string | undefined,
    readonly digest: Digest | undefined,
  ) {}

  /** Parses user input. A `docker://` prefix is accepted; a missing tag and digest means `latest`. */
  static parse(input: string): Reference {
    const s = input.startsWith('docker://') ? input.slice('docker://'.length) : input;
    const ref = Reference.normalize(input, s);
    return ref.nameOnly ? new Reference(ref.domain, ref.path, DEFAULT_TAG, undefined) : ref;
  }

  /**
   * ParseNormalizedNamed proper: no transport prefix and no default tag, so
   * `busybox` stays name-only. Signatures and policies need to tell the two apart.
   */
  static parseNormalized(input: string): Reference {
    return Reference.normalize(input, input);
  }

  /** ParseNamed: like parseNormalized, but the input must already be fully expanded. */
  static parseCanonical(input: string): Reference {
    const ref = Reference.normalize(input, input);
    if (ref.toString() !== input) throw new InvalidReferenceError(input, 'repository name must be canonical');
    return ref;
  }

  private static normalize(input: string, text: string): Reference {
    let s = text;
    if (s.length === 0) throw new InvalidReferenceError(input, 'empty reference');
    if (/\s/.test(s)) throw new InvalidReferenceError(input, 'contains whitespace');

    let digest: Digest | undefined;
    const at = s.indexOf('@');
    if (at >= 0) {
      const rawDigest = s.slice(at + 1);
      try {
        digest = Digest.parse(rawDigest);
      } catch {
        throw new InvalidReferenceError(input, `bad digest ${JSON.stringify(rawDigest)}`);
      }
      s = s.slice(0, at);
    }

    let tag: string | undefined;
    const lastSlash = s.lastIndexOf('/');
    const lastColon = s.lastIndexOf(':');
    if (lastColon > lastSlash) {
      tag = s.slice(lastColon + 1);
      s = s.slice(0, lastColon);
      if (!TAG_RE.test(tag)) throw new InvalidReferenceError(input, `bad tag ${JSON.stringify(tag)}`);
    }

    let domain: string;
    let path: string;
    const firstSlash = s.indexOf('/');
    const head = firstSlash >= 0 ? s.slice(0, firstSlash) : '';
    if (firstSlash >= 0 && (head.includes('.') || head.includes(':') || head === 'localhost' || head.startsWith('['))) {
      domain = head;
      path = s.slice(firstSlash + 1);
      if (!DOMAIN_RE.test(domain)) throw new InvalidReferenceError(input, `bad registry host ${JSON.stringify(domain)}`);
    } else {
      domain = DEFAULT_DOMAIN;
      path = s;
    }
    if (domain === LEGACY_DEFAULT_DOMAIN) domain = DEFAULT_DOMAIN;
    if (path.length === 0) throw new InvalidReferenceError(input, 'empty repository');
    if (domain === DEFAULT_DOMAIN && !path.includes('/')) {
      if (ANCHORED_HEX64.test(path)) {
        throw new InvalidReferenceError(input, 'cannot specify 64-byte hexadecimal strings');
      }
      path = `library/${path}`;
    }
    for (const component of path.split('/')) {
      if (component !== component.toLowerCase() && PATH_COMPONENT_RE.test(component.toLowerCase())) {
        throw new InvalidReferenceError(input, 'repository name must be lowercase');
      }
      if (!PATH_COMPONENT_RE.test(component)) {
        throw new InvalidReferenceError(input, `bad repository component ${JSON.stringify(component)}`);
      }
    }
    if (domain.length + 1 + path.length > MAX_NAME_LENGTH) {
      throw new InvalidReferenceError(input, `name longer than ${MAX_NAME_LENGTH} characters`);
    }
    return new Reference(domain, path, tag, digest);
  }

  /** Neither tag nor digest; only parseNormalized and parseCanonical return such references. */
  get nameOnly(): boolean {
    return this.tag === undefined && this.digest === undefined;
  }

  /** `domain/path`, the repository name. */
  get name(): string {
    return `${this.domain}/${this.path}`;
  }

  /** The registry host to contact: Docker Hub's API lives on another host than its name. */
  get registryHost(): string {
    return this.domain === DEFAULT_DOMAIN ? DOCKER_HUB_API_HOST : this.domain;
  }

  /** What to ask the registry for: the digest wins over the tag, as containerd does. */
  get manifestRef(): string {
    return this.digest ? this.digest.toString() : (this.tag ?? DEFAULT_TAG);
  }

  withDigest(digest: Digest): Reference {
    return new Reference(this.domain, this.path, undefined, digest);
  }

  toString(): string {
    return `${this.name}${this.tag !== undefined ? `:${this.tag}` : ''}${this.digest ? `@${this.digest}` : ''}`;
  }
}
