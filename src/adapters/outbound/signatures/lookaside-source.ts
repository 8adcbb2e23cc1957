import { open } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { request, type Dispatcher } from '../http/undici.js';
import { makeDispatcher, type ProxySettings } from '../http/dispatcher.js';
import { ImageTsError, NetworkError, PolicyInvalidError, SignatureInvalidError } from '../../../domain/errors.js';
import type { Digest } from '../../../domain/image/digest.js';
import type { Reference } from '../../../domain/image/reference.js';
import type { Logger } from '../../../ports/observability/logger.js';
import type { SimpleSignatureSource } from '../../../ports/signatures/signature-source.js';
import { abortError, transportError } from '../http/transport-errors.js';
import { readAtMost } from '../read-at-most.js';
import { withPublicRoots } from '../registry/ca-bundle.js';
import { EMPTY_REGISTRIES_D, lookasideBaseFor, sigstoreAttachmentsSetting, type RegistriesDConfig } from './registries-d.js';
import { silentLogger } from '../silent-logger.js';

/** c/image's limits: signatures per image, and bytes per signature. */
export const MAX_LOOKASIDE_SIGNATURES = 128;
export const MAX_SIGNATURE_BYTES = 4 << 20;
const MAX_REDIRECTS = 5;
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

const SIMPLE_SIGNING_PREFIX = Buffer.from('\0simple-signing\n', 'latin1');
const SIGSTORE_JSON_PREFIX = Buffer.from('\0sigstore-json\n', 'latin1');

export interface LookasideSourceOptions {
  /** Merged registries.d configuration; default: none (every image uses `defaultBase`). */
  readonly registriesD?: RegistriesDConfig | undefined;
  /** Base URL when no registries.d section names one; default c/image's built-in one. */
  readonly defaultBase?: string | undefined;
  /** Extra CA certificates (PEM text) trusted for https lookasides, beside the public roots. */
  readonly caPems?: readonly string[] | undefined;
  readonly logger?: Logger | undefined;
  readonly userAgent?: string | undefined;
  /** The same proxy as registry traffic. */
  readonly proxy?: ProxySettings | undefined;
}

/**
 * Simple signatures from a registries.d lookaside:
 * `<base>/<Path()>@<algo>=<hex>/signature-<N>`, N = 1, 2, … until the first
 * missing one (ENOENT for file://, 404 for http(s)://). Each is read with a
 * bound; more than 128 is an error.
 */
export class LookasideSignatureSource implements SimpleSignatureSource {
  private readonly config: RegistriesDConfig;
  private readonly logger: Logger;

  constructor(private readonly options: LookasideSourceOptions = {}) {
    this.config = options.registriesD ?? EMPTY_REGISTRIES_D;
    this.logger = options.logger ?? silentLogger;
  }

  async sigstoreAttachments(physical: Reference): Promise<boolean | undefined> {
    return sigstoreAttachmentsSetting(this.config, physical);
  }

  async getSignatures(physical: Reference, manifestDigest: Digest, signal?: AbortSignal): Promise<Buffer[]> {
    const base = lookasideBaseFor(this.config, physical, { defaultBase: this.options.defaultBase });
    let read: (url: URL) => Promise<Buffer | undefined>;
    let done = async (): Promise<void> => undefined;
    if (base.protocol === 'file:') {
      read = (url) => readSignatureFile(url);
    } else if (base.protocol === 'http:' || base.protocol === 'https:') {
      const pems = this.options.caPems ?? [];
      const agent = makeDispatcher(pems.length > 0 ? withPublicRoots(pems) : undefined, this.options.proxy);
      read = (url) => fetchSignature(url, agent, this.options.userAgent ?? 'image-ts/0.1.0', signal);
      done = () => agent.destroy();
    } else {
      throw new PolicyInvalidError(`registries.d: unsupported lookaside URL scheme ${base.protocol} for ${physical.name}`);
    }
    try {
      const out: Buffer[] = [];
      for (let n = 1; ; n++) {
        if (signal?.aborted) throw abortError(signal);
        const url = signatureUrl(base, physical, manifestDigest, n);
        const blob = await read(url);
        if (blob === undefined) break;
        if (n > MAX_LOOKASIDE_SIGNATURES) {
          throw new SignatureInvalidError(`lookaside ${redact(url.href)}: more than ${MAX_LOOKASIDE_SIGNATURES} signatures`);
        }
        const simple = simpleSigningBlob(blob);
        if (simple) out.push(simple);
      }
      this.logger.log('debug', 'signatures.lookaside', { image: physical.name, base: redact(base.href), count: out.length });
      return out;
    } finally {
      await done();
    }
  }
}

/** `<base>/<Path()>@<algo>=<hex>/signature-<n>`; the registry host is not part of it. */
export function signatureUrl(base: URL, ref: Reference, manifestDigest: Digest, n: number): URL {
  const url = new URL(base.href);
  url.pathname = `${url.pathname.replace(/\/+$/, '')}/${ref.path}@${manifestDigest.algorithm}=${manifestDigest.encoded}/signature-${n}`;
  return url;
}

/**
 * A stored blob as a simple signature: `\0simple-signing\n` is stripped;
 * `\0sigstore-json\n` blobs are cosign signatures, not ours (undefined).
 * Anything else is handed on as is: raw OpenPGP, or junk the verifier refuses.
 */
export function simpleSigningBlob(blob: Buffer): Buffer | undefined {
  if (blob.subarray(0, SIMPLE_SIGNING_PREFIX.length).equals(SIMPLE_SIGNING_PREFIX)) return blob.subarray(SIMPLE_SIGNING_PREFIX.length);
  if (blob.subarray(0, SIGSTORE_JSON_PREFIX.length).equals(SIGSTORE_JSON_PREFIX)) return undefined;
  return blob;
}

async function readSignatureFile(url: URL): Promise<Buffer | undefined> {
  let path: string;
  try {
    path = fileURLToPath(url);
  } catch {
    throw new PolicyInvalidError(`registries.d: unusable lookaside file URL ${redact(url.href)}`);
  }
  let handle;
  try {
    handle = await open(path, 'r');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    throw new ImageTsError('IO', `cannot read signature ${path}: ${code ?? 'read error'}`);
  }
  try {
    if ((await handle.stat()).size > MAX_SIGNATURE_BYTES) throw tooLarge(url);
    return await readAtMost(handle.createReadStream({ autoClose: false }), MAX_SIGNATURE_BYTES, () => tooLarge(url));
  } catch (err) {
    if (err instanceof ImageTsError) throw err;
    throw new ImageTsError('IO', `cannot read signature ${path}: ${(err as NodeJS.ErrnoException).code ?? 'read error'}`);
  } finally {
    await handle.close();
  }
}

async function fetchSignature(start: URL, dispatcher: Dispatcher, userAgent: string, signal: AbortSignal | undefined): Promise<Buffer | undefined> {
  let url = start;
  for (let hop = 0; ; hop++) {
    let res: Dispatcher.ResponseData;
    try {
      res = await request(url, { dispatcher, method: 'GET', headers: { 'user-agent': userAgent }, signal });
    } catch (err) {
      if (signal?.aborted) throw abortError(signal);
      throw transportError(err, url.host);
    }
    const location = res.headers['location'];
    if (REDIRECT_STATUSES.has(res.statusCode) && typeof location === 'string') {
      await res.body.dump();
      if (hop >= MAX_REDIRECTS) throw new NetworkError(`lookaside ${redact(start.href)}: more than ${MAX_REDIRECTS} redirects`);
      const next = new URL(location, url);
      if (next.protocol !== 'http:' && next.protocol !== 'https:') {
        throw new NetworkError(`lookaside ${redact(start.href)} redirected to an unsupported ${next.protocol} URL`);
      }
      url = next;
      continue;
    }
    if (res.statusCode === 404) {
      await res.body.dump();
      return undefined;
    }
    if (res.statusCode !== 200) {
      await res.body.dump();
      throw new NetworkError(`lookaside ${redact(url.href)} answered HTTP ${res.statusCode}`);
    }
    // Content-Type is ignored, as c/image does: the lookaside spec places no requirement on it.
    return readBounded(res, url, signal);
  }
}

async function readBounded(res: Dispatcher.ResponseData, url: URL, signal: AbortSignal | undefined): Promise<Buffer> {
  const declared = Number(res.headers['content-length']);
  if (Number.isFinite(declared) && declared > MAX_SIGNATURE_BYTES) {
    res.body.destroy();
    throw tooLarge(url);
  }
  try {
    return await readAtMost(res.body, MAX_SIGNATURE_BYTES, () => tooLarge(url));
  } catch (err) {
    if (err instanceof ImageTsError) throw err;
    if (signal?.aborted) throw abortError(signal);
    throw transportError(err, url.host);
  }
}

const tooLarge = (url: URL): SignatureInvalidError =>
  new SignatureInvalidError(`lookaside ${redact(url.href)}: signature larger than ${MAX_SIGNATURE_BYTES} bytes`);

/** A URL fit for messages: no user info, no query (presigned redirect targets carry tokens there). */
function redact(href: string): string {
  try {
    const u = new URL(href);
    return u.protocol === 'file:' ? u.pathname : `${u.origin}${u.pathname}`;
  } catch {
    return '<invalid URL>';
  }
}
