import { ImageTsError, MissingKeyError, asImageTsError } from '../errors.js';
import type { KeyProvider } from '../../ports/keys/key-provider.js';
import type { KeyUnwrapper } from '../../ports/keys/key-unwrapper.js';
import type { Logger } from '../../ports/observability/logger.js';
import type { DecryptConfig } from './decrypt-config.js';
import { keyUnwrapInput, parseKeyUnwrapOutput } from './key-provider-protocol.js';
import type { LayerEncryption } from './layer-encryption.js';
import { PrivateLayerOptions } from './layer-options.js';

/** Services that failed to answer say more than "no key": their errors win over MISSING_KEY. */
const SERVICE_CODES = new Set(['KEY_BROKER_UNAVAILABLE', 'KEY_BROKER_DENIED', 'ATTESTATION_FAILED', 'UNSUPPORTED']);

/**
 * Finds the layer key: every recipient of every scheme the layer names is
 * tried with the keys of this pull (local schemes first, they cost nothing),
 * then with the configured key providers, until one yields private options.
 */
export class LayerKeys {
  constructor(
    private readonly unwrappers: readonly KeyUnwrapper[],
    private readonly providers: ReadonlyMap<string, KeyProvider>,
    private readonly logger?: Logger,
  ) {}

  async unwrap(what: string, enc: LayerEncryption, dc: DecryptConfig, signal?: AbortSignal): Promise<PrivateLayerOptions> {
    const local = enc.wrapped.filter((w) => !w.scheme.startsWith('provider.'));
    const remote = enc.wrapped.filter((w) => w.scheme.startsWith('provider.'));
    let serviceError: ImageTsError | undefined;
    for (const w of local) {
      const unwrapper = this.unwrappers.find((u) => u.scheme === w.scheme);
      if (!unwrapper || !unwrapper.hasKeys(dc)) continue;
      for (const item of w.items) {
        signal?.throwIfAborted();
        let opts: Buffer | undefined;
        try {
          opts = await unwrapper.unwrap(item, dc);
        } catch (err) {
          // One malformed recipient must not hide the others, as in ocicrypt.
          const e = asImageTsError(err);
          this.logger?.log('warn', 'recipient-unreadable', { scheme: w.scheme, code: e.code, message: `${what}: a ${w.scheme} recipient cannot be read: ${e.message}` });
          continue;
        }
        if (opts) return PrivateLayerOptions.parse(opts, enc.pub);
      }
    }
    for (const w of remote) {
      const name = w.scheme.slice('provider.'.length);
      const provider = this.providers.get(name);
      if (!provider) continue;
      for (const item of w.items) {
        signal?.throwIfAborted();
        try {
          const out = await provider.unwrapKey(keyUnwrapInput(item, dc), signal);
          return PrivateLayerOptions.parse(parseKeyUnwrapOutput(out, name), enc.pub);
        } catch (err) {
          const e = asImageTsError(err);
          if (signal?.aborted) throw e;
          if (e.code === 'DECRYPT_FAILED' || !SERVICE_CODES.has(e.code)) throw e;
          // debug, not warn: if nothing else unwraps the key this error is thrown below, and the CLI must print it once.
          this.logger?.log('debug', 'key-provider-failed', { provider: name, code: e.code, message: e.message });
          serviceError ??= e;
        }
      }
    }
    if (serviceError) throw new ImageTsError(serviceError.code, `${what}: key provider: ${serviceError.message}`);
    const schemes = enc.wrapped.map((w) => w.scheme);
    throw new MissingKeyError(`${what} is encrypted for ${schemes.join(', ')}; no configured key unwraps it (${describeKeys(dc, this.providers)})`);
  }
}

function describeKeys(dc: DecryptConfig, providers: ReadonlyMap<string, KeyProvider>): string {
  const parts: string[] = [];
  const n = (count: number, word: string): string => `${count} ${word}${count === 1 ? '' : 's'}`;
  if (dc.privateKeys.length) parts.push(n(dc.privateKeys.length, 'private key'));
  if (dc.certificates.length) parts.push(n(dc.certificates.length, 'certificate'));
  if (dc.gpgPrivateKeys.length) parts.push(n(dc.gpgPrivateKeys.length, 'OpenPGP key'));
  parts.push(providers.size ? `key providers: ${[...providers.keys()].join(', ')}` : 'no key provider configured');
  return parts.join('; ');
}
