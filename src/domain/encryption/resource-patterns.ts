import { KeyBrokerDeniedError } from '../errors.js';
import type { ResourceUri } from './resource-uri.js';

/**
 * `repo/type/tag` patterns, `*` matching one whole segment: which key-broker
 * resources a service hands to its callers. Pulls inside the service are not
 * limited by them.
 */
export class ResourcePatterns {
  private readonly patterns: readonly (readonly string[])[];

  constructor(patterns: readonly string[]) {
    this.patterns = patterns.map((p) => p.split('/'));
  }

  allows(uri: ResourceUri): boolean {
    const segs = uri.segments;
    return this.patterns.some((p) => p.length === segs.length && p.every((s, i) => s === '*' || s === segs[i]));
  }

  /** KEY_BROKER_DENIED for a resource no pattern lists. */
  check(uri: ResourceUri): void {
    if (!this.allows(uri)) throw new KeyBrokerDeniedError(`resource ${uri.path} is not in serve.resources_allowed`);
  }
}
