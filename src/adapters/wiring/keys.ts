import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { CocoKeyProvider } from '../../domain/encryption/coco-key-provider.js';
import { ConfigFileError, KeyBrokerUnavailableError } from '../../domain/errors.js';
import type { ResourceUri } from '../../domain/encryption/resource-uri.js';
import type { KeyBroker } from '../../ports/keys/key-broker.js';
import type { KeyProvider } from '../../ports/keys/key-provider.js';
import { loadKeyProviderConfig } from '../outbound/keys/providers/key-providers.js';
import type { Settings } from './settings-file.js';

/** The same extra CAs the registry trusts: inline PEMs, PEM files, certs.d-style directories of `*.crt`. */
export function caPems(settings: Settings): string[] {
  const pems = [...settings.caPems];
  for (const path of settings.caFiles) {
    try {
      const files = statSync(path).isDirectory()
        ? readdirSync(path).filter((n) => n.endsWith('.crt')).sort().map((n) => join(path, n))
        : [path];
      for (const file of files) pems.push(readFileSync(file, 'utf8'));
    } catch (err) {
      throw new ConfigFileError(`cannot read CA certificates from ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
    }
  }
  return pems;
}

/** Stands in where no broker is configured, so that a kbs:// key fails with a reason. */
export class NoKeyBroker implements KeyBroker {
  readonly description = 'no key broker';
  async getResource(uri: ResourceUri): Promise<Buffer> {
    throw new KeyBrokerUnavailableError(`no key broker is configured to fetch ${uri} (set key_broker in the config file or use a profile that has one)`);
  }
}

/**
 * Key providers by name: the ocicrypt config's entries, and the Confidential
 * Containers `attestation-agent` provider in process over the broker unless
 * the config maps that name elsewhere.
 */
export function keyProvidersFor(settings: Settings, broker: KeyBroker): Map<string, KeyProvider> {
  let providers = new Map<string, KeyProvider>();
  if (settings.keyproviderConfig) {
    let text: string;
    try {
      text = readFileSync(settings.keyproviderConfig, 'utf8');
    } catch (err) {
      throw new ConfigFileError(`cannot read key provider config ${settings.keyproviderConfig}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
    }
    providers = loadKeyProviderConfig(text, { source: settings.keyproviderConfig, native: (_kind, name) => new CocoKeyProvider(broker, name) });
  }
  if (!providers.has('attestation-agent')) providers.set('attestation-agent', new CocoKeyProvider(broker));
  return providers;
}
