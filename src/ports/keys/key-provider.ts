/**
 * One ocicrypt key provider, by its configured name: it takes the protocol's
 * JSON input and returns its JSON output (see domain/encryption/key-provider-protocol).
 * Transports: a command, gRPC `keyprovider.KeyProviderService`, ttrpc, or in
 * process through the KeyBroker.
 */
export interface KeyProvider {
  readonly name: string;
  unwrapKey(input: Buffer, signal?: AbortSignal): Promise<Buffer>;
}
