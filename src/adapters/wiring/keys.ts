import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { CocoKeyProvider } from '../../domain/encryption/coco-key-provider.js';
import { ConfigFileError, KeyBrokerUnavailableError } from '../../domain/errors.js';
import type { ResourceUri } from '../../domain/encryption/resource-uri.js';
import type { AttestationAgent } from '../../ports/keys/attestation-agent.js';
import type { KeyBroker } from '../../ports/keys/key-broker.js';
import type { KeyProvider } from '../../ports/keys/key-provider.js';
import type { Logger } from '../../ports/observability/logger.js';
import { AttestationAgentClient } from '../outbound/keys/aa-client.js';
import { CdhKeyBroker } from '../outbound/keys/cdh-key-broker.js';
import { KbsKeyBroker } from '../outbound/keys/kbs-key-broker.js';
import { loadKeyProviderConfig } from '../outbound/keys/key-providers.js';
import { OfflineFsKeyBroker } from '../outbound/keys/offline-fs-key-broker.js';
import { SampleAttester } from '../outbound/keys/sample-attester.js';
import { GrpcTransport } from '../outbound/rpc/grpc.js';
import type { RpcTransport } from '../outbound/rpc/rpc.js';
import { TtrpcClient } from '../outbound/rpc/ttrpc.js';
import type { KeyBrokerSettings, RpcEndpoint, Settings } from './image-config-file.js';

export function rpcTransport(endpoint: RpcEndpoint): RpcTransport {
  return endpoint.transport === 'ttrpc' ? new TtrpcClient(endpoint.address) : new GrpcTransport(endpoint.address);
}

/** The AA the settings name, if any. */
export function attestationAgentFor(settings: Settings): AttestationAgent | undefined {
  return settings.attestationAgent ? new AttestationAgentClient(rpcTransport(settings.attestationAgent)) : undefined;
}

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

/** One adapter per backend; which one is the deployment's choice, not the domain's. */
export function keyBrokerFor(broker: KeyBrokerSettings, settings: Settings, logger: Logger): KeyBroker {
  switch (broker.kind) {
    case 'kbs': {
      // The sample attester proves nothing; it is used only when asked for by name.
      const attester = broker.attester === 'sample' ? new SampleAttester(logger) : attestationAgentFor(settings);
      if (!attester) throw new ConfigFileError('key_broker kind kbs with attester "aa" needs attestation_agent.address');
      return new KbsKeyBroker({ url: broker.url, extraCaPems: caPems(settings), attester, logger });
    }
    case 'cdh': return new CdhKeyBroker(rpcTransport(broker));
    case 'offline-fs': return new OfflineFsKeyBroker({ files: broker.files, logger });
  }
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
