import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { makeDispatcher, type HttpTimeouts, type ProxySettings } from '../http/dispatcher.js';
import { lookupCredentials, parseAuthFile } from '../../../domain/auth/credential-lookup.js';
import { ConfigFileError, DigestMismatchError, ImageTsError, InvalidArgumentError, NetworkError, UnsupportedError } from '../../../domain/errors.js';
import type { Descriptor } from '../../../domain/image/descriptor.js';
import { Digest } from '../../../domain/image/digest.js';
import type { ImageTarget } from '../../../domain/image/image-target.js';
import { MANIFEST_ACCEPT } from '../../../domain/image/media-types.js';
import type { Reference } from '../../../domain/image/reference.js';
import type { Logger } from '../../../ports/observability/logger.js';
import type {
  BlobRequest,
  Credentials,
  FetchedManifest,
  ImageSource,
  ImageSourceFactory,
  OpenOptions,
  Referrer,
} from '../../../ports/image-source/image-source.js';
import { FallbackImageSource } from '../../../domain/pull/fallback-source.js';
import { pullSources, type RegistriesConf } from '../../../domain/registry/registries-conf.js';
import { loadCaBundle } from './ca-bundle.js';
import { readCapped, RegistryClient, type Response } from './registry-client.js';
import { resumingStream, type BlobBody } from './resuming-stream.js';
import { MAX_SIGNATURE_LIST_BYTES, parseSignatureList, signatureExtensionPath } from './signature-extension.js';
import { fetchReferrersFromApi } from './referrers-api.js';
import { referrersFromTag } from '../../../domain/image/referrers-lookup.js';
import { abortError, isTransientError, transportError } from '../http/transport-errors.js';
import { silentLogger } from '../silent-logger.js';

export interface RegistrySourceOptions {
  /** `host[:port]` entries reached over HTTPS without certificate checks, then plain HTTP; matched exactly. */
  readonly insecureRegistries: readonly string[];
  /** `host[:port]` entries reached over plain HTTP only, never TLS (ctr's --plain-http); matched exactly. */
  readonly plainHttpRegistries?: readonly string[] | undefined;
  /** Extra CA PEM files, or directories whose `*.crt` files are CAs. */
  readonly caFiles: readonly string[];
  /**
   * certs.d-style roots: `<dir>/<host[:port]>/*.crt` are extra CAs for that
   * registry only, as containers/image and docker read them. Missing dirs are skipped.
   */
  readonly certsDirs?: readonly string[] | undefined;
  /** Extra CA certificates given inline as PEM text. */
  readonly caPems?: readonly string[] | undefined;
  /**
   * auth.json / docker config.json files, searched in order; the first with
   * usable credentials for the image wins. Missing files are skipped.
   */
  readonly authFiles?: readonly string[] | undefined;
  /** Default credentials (e.g. `--creds`); per-open credentials win over them, they win over the auth file. */
  readonly credentials?: Credentials | undefined;
  /** Extra attempts for transient failures, and resumes per blob. Default 3. */
  readonly retries?: number | undefined;
  readonly logger?: Logger | undefined;
  readonly userAgent?: string | undefined;
  /** Connect and idle-read timeouts for every registry connection. */
  readonly timeouts?: HttpTimeouts | undefined;
  /** An HTTP(S) proxy for registry traffic; hosts in its no_proxy are reached directly. */
  readonly proxy?: ProxySettings | undefined;
  /** registries.conf: mirrors, remaps, blocks, insecure registries; loaded on first use. */
  readonly registries?: (() => Promise<RegistriesConf | undefined>) | undefined;
}

const DEFAULT_RETRIES = 3;
const DEFAULT_USER_AGENT = 'image-ts/0.1.0';
/** c/image's manifest size cap. */
const MAX_MANIFEST_BYTES = 4 << 20;
const TAG_RE = /^[\w][\w.-]{0,127}$/;

/** Opens `docker://` targets against registries speaking the distribution API. */
export class RegistrySourceFactory implements ImageSourceFactory {
  /** CA bundles by registry host: the global extra CAs plus that host's certs.d files. */
  private readonly caBundles = new Map<string, Promise<string[] | undefined>>();
  private readonly logger: Logger;

  constructor(private readonly options: RegistrySourceOptions) {
    this.logger = options.logger ?? silentLogger;
    const retries = options.retries;
    if (retries !== undefined && !(Number.isInteger(retries) && retries >= 0)) {
      throw new InvalidArgumentError(`retries must be a non-negative integer, got ${retries}`);
    }
  }

  supports(target: ImageTarget): boolean {
    return target.kind === 'registry';
  }

  async open(target: ImageTarget, options?: OpenOptions): Promise<ImageSource> {
    if (target.kind !== 'registry') throw new UnsupportedError(`the registry source cannot open ${target.kind} targets`);
    if (options?.signal?.aborted) throw abortError(options.signal);
    const conf = await this.options.registries?.();
    if (!conf) return this.openOne(target.reference, false, options);
    const sources = pullSources(conf, target.reference);
    if (sources.length === 1 && !sources[0]!.mirror) return this.openOne(sources[0]!.reference, sources[0]!.insecure, options);
    return new FallbackImageSource(sources.map((s) => ({
      physical: s.reference,
      description: `${s.mirror ? 'mirror' : 'registry'} ${s.reference.name}`,
      open: () => this.openOne(s.reference, s.insecure, options),
    })));
  }

  private async openOne(reference: Reference, insecureByConf: boolean, options?: OpenOptions): Promise<ImageSource> {
    const host = reference.registryHost;
    const named = (hosts: readonly string[] | undefined): boolean => !!hosts?.some((h) => h === host || h === reference.domain);
    const insecure = insecureByConf || named(this.options.insecureRegistries);
    const scheme = named(this.options.plainHttpRegistries) ? 'http' : insecure ? 'insecure' : 'https';
    const ca = await this.caBundleFor(reference.domain);
    const credentials = options?.credentials ?? this.options.credentials ?? (await this.fromAuthFile(reference));
    const dispatcher = makeDispatcher(ca, this.options.proxy, this.options.timeouts, { verify: !insecure });
    const retries = this.options.retries ?? DEFAULT_RETRIES;
    const client = new RegistryClient({
      scheme,
      host,
      repository: reference.path,
      dispatcher,
      credentials,
      retries,
      logger: this.logger,
      userAgent: this.options.userAgent ?? DEFAULT_USER_AGENT,
    });
    this.logger.log('debug', 'registry.open', { image: reference.toString(), scheme, creds: credentials?.kind ?? 'none' });
    return new RegistrySource(reference, client, dispatcher, retries, this.logger);
  }

  private caBundleFor(domain: string): Promise<string[] | undefined> {
    let bundle = this.caBundles.get(domain);
    if (!bundle) {
      bundle = (async () => {
        const hostDirs: string[] = [];
        for (const root of this.options.certsDirs ?? []) {
          const dir = join(root, domain);
          if (await stat(dir).then((st) => st.isDirectory(), () => false)) hostDirs.push(dir);
        }
        return loadCaBundle([...this.options.caFiles, ...hostDirs], this.options.caPems);
      })();
      // A failed load is not cached: the user may fix the file and retry in a long-running service.
      bundle.catch(() => this.caBundles.delete(domain));
      this.caBundles.set(domain, bundle);
    }
    return bundle;
  }

  private async fromAuthFile(reference: Reference): Promise<Credentials | undefined> {
    for (const file of this.options.authFiles ?? []) {
      let text: string;
      try {
        text = await readFile(file, 'utf8');
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOENT' || code === 'ENOTDIR') continue;
        throw new ConfigFileError(`cannot read ${file}: ${code ?? 'read error'}`);
      }
      const found = lookupCredentials(parseAuthFile(text, file), reference);
      if (found) return found;
    }
    return undefined;
  }
}

class RegistrySource implements ImageSource {
  readonly description: string;
  private readonly repoPath: string;
  /** false once the registry showed it has no referrers API (a 404): later lookups go straight to the tag schema. */
  private referrersApi = true;

  physicalReference(): Reference {
    return this.reference;
  }

  constructor(
    private readonly reference: Reference,
    private readonly client: RegistryClient,
    private readonly dispatcher: Dispatcher,
    private readonly retries: number,
    private readonly logger: Logger,
  ) {
    this.description = `docker://${reference.toString()}`;
    this.repoPath = `/v2/${reference.path}`;
  }

  async getManifest(ref: string, signal?: AbortSignal): Promise<FetchedManifest> {
    const wanted = parseManifestRef(ref);
    const image = `${this.reference.name}${wanted ? '@' : ':'}${ref}`;
    const headers = { accept: MANIFEST_ACCEPT.join(', ') };
    for (let attempt = 0; ; attempt++) {
      const res = await this.client.get(`${this.repoPath}/manifests/${ref}`, headers, signal);
      if (res.statusCode !== 200) throw await this.client.statusError(res, `manifest ${image}`);
      let bytes: Buffer;
      try {
        bytes = await readCapped(res, MAX_MANIFEST_BYTES, `manifest ${image}`);
      } catch (err) {
        // The body broke off: fetch the (small) manifest again rather than resuming it.
        if (signal?.aborted) throw abortError(signal);
        if (isTransientError(err) && attempt < this.retries) continue;
        throw transportError(err, this.reference.registryHost);
      }
      verifyManifestDigest(bytes, wanted, header(res, 'docker-content-digest'), image);
      return { bytes, mediaType: header(res, 'content-type')?.split(';')[0]?.trim() || undefined };
    }
  }

  async getBlob(descriptor: Descriptor, request?: BlobRequest): Promise<Readable> {
    const signal = request?.signal;
    const digest = descriptor.digest.toString();
    const what = `blob ${digest} of ${this.reference.name}`;
    const open = async (offset: number): Promise<BlobBody> => {
      const headers: Record<string, string> = offset > 0 ? { range: `bytes=${offset}-` } : {};
      const res = await this.client.get(`${this.repoPath}/blobs/${digest}`, headers, signal);
      return blobBody(res, offset, what, this.client);
    };
    const first = await open(0);
    return resumingStream(first, {
      host: this.reference.registryHost,
      retries: this.retries,
      size: descriptor.size,
      signal,
      reopen: open,
      onResume: (offset, attempt, reason) =>
        this.logger.log('info', 'registry.blob.resume', { digest, offset, attempt, reason }),
    });
  }

  /** The registry's own simple signatures when its ping announced the extension; else undefined (lookaside applies). */
  async getSimpleSignatures(manifestDigest: Digest, signal?: AbortSignal): Promise<Buffer[] | undefined> {
    if (!(await this.client.supportsSignatureExtension(signal))) return undefined;
    const what = `signatures of ${this.reference.name}@${manifestDigest.toString()}`;
    const res = await this.client.get(signatureExtensionPath(this.reference.path, manifestDigest), { accept: 'application/json' }, signal);
    if (res.statusCode !== 200) throw await this.client.statusError(res, what);
    let body: Buffer;
    try {
      body = await readCapped(res, MAX_SIGNATURE_LIST_BYTES, what, 'NETWORK');
    } catch (err) {
      if (signal?.aborted) throw abortError(signal);
      throw transportError(err, this.reference.registryHost);
    }
    return parseSignatureList(body, what);
  }

  /** The referrers API when the registry has it, else the referrers tag schema. */
  async listReferrers(subject: Digest, artifactType?: string, signal?: AbortSignal): Promise<Referrer[]> {
    if (this.referrersApi) {
      const listed = await fetchReferrersFromApi(this.client, this.reference.path, subject, artifactType, signal);
      if (listed) return listed;
      this.referrersApi = false;
      this.logger.log('debug', 'registry.referrers.tag-schema', { host: this.reference.registryHost });
    }
    return referrersFromTag(this, subject, artifactType, signal);
  }

  /** Destroys rather than drains the connections: a blob stream nobody reads must not keep close() waiting. */
  async close(): Promise<void> {
    await this.dispatcher.destroy();
  }
}

/** A tag or a digest; returns the digest when it is one. Anything else must not reach a URL path. */
function parseManifestRef(ref: string): Digest | undefined {
  if (ref.includes(':')) return Digest.parse(ref);
  if (!TAG_RE.test(ref)) throw new ImageTsError('INVALID_REFERENCE', `invalid tag ${JSON.stringify(ref)}`);
  return undefined;
}

function header(res: Response, name: string): string | undefined {
  const v = res.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** Checks the body against the digest asked for, else the one the registry claims. */
function verifyManifestDigest(bytes: Buffer, wanted: Digest | undefined, claimed: string | undefined, image: string): void {
  let expected = wanted;
  if (!expected && claimed !== undefined && Digest.isValid(claimed)) expected = Digest.parse(claimed);
  if (!expected) return;
  const actual = Digest.of(bytes, expected.algorithm);
  if (!actual.equals(expected)) throw new DigestMismatchError(`manifest ${image}`, expected.toString(), actual.toString());
}

async function blobBody(res: Response, offset: number, what: string, client: RegistryClient): Promise<BlobBody> {
  if (res.statusCode === 200) return { body: res.body, skip: offset };
  if (res.statusCode === 206 && offset > 0) {
    const start = /^bytes (\d+)-/.exec(header(res, 'content-range') ?? '')?.[1];
    if (start !== undefined && Number(start) === offset) return { body: res.body, skip: 0 };
    res.body.destroy();
    throw new NetworkError(`${what}: the registry resumed at the wrong offset`);
  }
  throw await client.statusError(res, what);
}
