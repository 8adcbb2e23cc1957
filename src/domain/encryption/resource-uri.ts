import { InvalidArgumentError } from '../errors.js';

/**
 * `kbs://[host[:port]]/<repository>/<type>/<tag>[?query]`, also
 * `kbs+<plugin>://…`. The host part is kept but never used to route: the
 * configured broker decides where resources come from.
 */
export class ResourceUri {
  private constructor(
    readonly plugin: string,
    readonly address: string,
    readonly segments: readonly string[],
    readonly query: string,
  ) {}

  static parse(input: string): ResourceUri {
    let url: URL;
    try {
      url = new URL(input);
    } catch {
      throw new InvalidArgumentError(`invalid resource URI ${JSON.stringify(input)}`);
    }
    const m = /^kbs(?:\+([a-z0-9_-]+))?:$/.exec(url.protocol);
    if (!m) throw new InvalidArgumentError(`resource URI ${JSON.stringify(input)} must use kbs:// or kbs+<plugin>://`);
    const plugin = m[1] ?? 'resource';
    const segments = url.pathname.split('/').slice(1).map((s) => decodeSegment(input, s));
    if (segments.some((s) => s === '' || s === '.' || s === '..')) {
      throw new InvalidArgumentError(`resource URI ${JSON.stringify(input)} has an empty or relative path segment`);
    }
    if (plugin === 'resource' && segments.length !== 3) {
      throw new InvalidArgumentError(`resource URI ${JSON.stringify(input)} must name <repository>/<type>/<tag>`);
    }
    if (segments.length === 0) throw new InvalidArgumentError(`resource URI ${JSON.stringify(input)} has no path`);
    return new ResourceUri(plugin, url.host, segments, url.search.replace(/^\?/, ''));
  }

  /** `repo/type/tag`, the key of offline resource files and of the KBS path. */
  get path(): string {
    return this.segments.join('/');
  }

  /** The canonical form: no host, since the host is ignored. */
  toString(): string {
    const scheme = this.plugin === 'resource' ? 'kbs' : `kbs+${this.plugin}`;
    return `${scheme}:///${this.segments.map(encodeURIComponent).join('/')}${this.query ? `?${this.query}` : ''}`;
  }
}

/** decodeURIComponent throws a URIError on a malformed escape (`%E0%A4%A`); a URI from an annotation or a client is untrusted. */
function decodeSegment(input: string, segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new InvalidArgumentError(`resource URI ${JSON.stringify(input)} has a malformed percent-escape`);
  }
}
