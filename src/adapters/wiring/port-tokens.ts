/**
 * Service identifiers of the ports, for inversify: bind one in a module of
 * yours (ImageServiceOptions.modules) and every consumer of the port gets your
 * adapter. They live here, not beside the interfaces, so that the ports hold
 * nothing that runs.
 */
export const AttestationAgentToken = Symbol.for('image-ts.AttestationAgent');
export const BundleDirectoryToken = Symbol.for('image-ts.BundleDirectory');
export const DecompressorToken = Symbol.for('image-ts.Decompressor');
export const ImageSourceFactoryToken = Symbol.for('image-ts.ImageSourceFactory');
export const KeyBrokerToken = Symbol.for('image-ts.KeyBroker');
export const KeyProvidersToken = Symbol.for('image-ts.KeyProviders');
export const KeyUnwrapperToken = Symbol.for('image-ts.KeyUnwrapper');
export const LayerStoreToken = Symbol.for('image-ts.LayerStore');
export const LoggerToken = Symbol.for('image-ts.Logger');
export const MetadataStoreToken = Symbol.for('image-ts.MetadataStore');
export const ResourceLoaderToken = Symbol.for('image-ts.ResourceLoader');
export const SigstoreVerifierToken = Symbol.for('image-ts.SigstoreVerifier');
export const SimpleSignatureSourceToken = Symbol.for('image-ts.SimpleSignatureSource');
export const SimpleSigningVerifierToken = Symbol.for('image-ts.SimpleSigningVerifier');
export const SnapshottersToken = Symbol.for('image-ts.Snapshotters');
