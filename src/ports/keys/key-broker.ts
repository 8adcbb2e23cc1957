import type { ResourceUri } from '../../domain/encryption/resource-uri.js';

/**
 * Releases secrets (key-encryption keys, policies, credentials) addressed by
 * `kbs:///repo/type/tag`, typically only to an attested guest. Adapters: a
 * Trustee KBS client, CDH's GetResourceService over gRPC or ttrpc, offline
 * files. Failures are KEY_BROKER_UNAVAILABLE (no answer), KEY_BROKER_DENIED
 * (an answer: no) or ATTESTATION_FAILED; never a secret in a message.
 */
export interface KeyBroker {
  /** Where resources come from, for messages; no credentials in it. */
  readonly description: string;
  getResource(uri: ResourceUri, signal?: AbortSignal): Promise<Buffer>;
}
