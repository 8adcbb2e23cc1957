/**
 * Every failure a user can see carries a stable code. The CLI and RPC layers map
 * codes to exit statuses and status codes; they never look at message text.
 */
export type ErrorCode =
  | 'INVALID_REFERENCE'
  | 'INVALID_ARGUMENT'
  | 'INVALID_MANIFEST'
  | 'INVALID_CONFIG'
  | 'CONFIG_FILE_INVALID'
  | 'PLATFORM_NOT_FOUND'
  | 'UNAUTHORIZED'
  | 'DENIED'
  | 'BLOCKED'
  | 'NOT_FOUND'
  | 'DIGEST_MISMATCH'
  | 'UNSAFE_LAYER'
  | 'INVALID_LAYER'
  | 'UNSUPPORTED'
  | 'NETWORK'
  | 'TLS'
  | 'BUNDLE_EXISTS'
  | 'BUNDLE_NOT_FOUND'
  | 'MOUNT_FAILED'
  | 'NO_SPACE'
  | 'LIMIT_EXCEEDED'
  | 'STORE'
  | 'IN_USE'
  | 'IO'
  | 'MISSING_KEY'
  | 'DECRYPT_FAILED'
  | 'KEY_BROKER_UNAVAILABLE'
  | 'KEY_BROKER_DENIED'
  | 'ATTESTATION_FAILED'
  | 'POLICY_INVALID'
  | 'POLICY_DENIED'
  | 'SIGNATURE_MISSING'
  | 'SIGNATURE_INVALID'
  | 'UNENCRYPTED_IMAGE_REJECTED'
  | 'INTERNAL';

export class ImageTsError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

export class InvalidReferenceError extends ImageTsError {
  constructor(input: string, why: string) {
    super('INVALID_REFERENCE', `invalid reference ${JSON.stringify(input)}: ${why}`);
  }
}

export class InvalidArgumentError extends ImageTsError {
  constructor(message: string) {
    super('INVALID_ARGUMENT', message);
  }
}

export class InvalidManifestError extends ImageTsError {
  constructor(message: string) {
    super('INVALID_MANIFEST', message);
  }
}

export class InvalidConfigError extends ImageTsError {
  constructor(message: string) {
    super('INVALID_CONFIG', message);
  }
}

export class ConfigFileError extends ImageTsError {
  constructor(message: string) {
    super('CONFIG_FILE_INVALID', message);
  }
}

export class PlatformNotFoundError extends ImageTsError {
  constructor(wanted: string, available: readonly string[]) {
    super(
      'PLATFORM_NOT_FOUND',
      `no manifest for platform ${wanted}; the index has ${available.length ? available.join(', ') : 'no platforms'}`,
    );
  }
}

export class UnauthorizedError extends ImageTsError {
  constructor(message: string) {
    super('UNAUTHORIZED', message);
  }
}

export class NotFoundError extends ImageTsError {
  constructor(message: string) {
    super('NOT_FOUND', message);
  }
}

export class DigestMismatchError extends ImageTsError {
  constructor(what: string, expected: string, actual: string) {
    super('DIGEST_MISMATCH', `${what}: expected ${expected}, got ${actual}`);
  }
}

export class SizeMismatchError extends ImageTsError {
  constructor(what: string, expected: number, actual: number) {
    super('DIGEST_MISMATCH', `${what}: expected ${expected} bytes, got ${actual}`);
  }
}

export class UnsafeLayerError extends ImageTsError {
  constructor(entry: string, why: string) {
    super('UNSAFE_LAYER', `layer entry ${JSON.stringify(entry)}: ${why}`);
  }
}

export class UnsupportedError extends ImageTsError {
  constructor(message: string) {
    super('UNSUPPORTED', message);
  }
}

export class NetworkError extends ImageTsError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('NETWORK', message, options);
  }
}

export class BundleExistsError extends ImageTsError {
  constructor(path: string) {
    super('BUNDLE_EXISTS', `bundle ${path} already exists and is not empty`);
  }
}

export class StoreError extends ImageTsError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('STORE', message, options);
  }
}

/** No configured key unwraps any recipient of an encrypted layer. */
export class MissingKeyError extends ImageTsError {
  constructor(message: string) {
    super('MISSING_KEY', message);
  }
}

/** The layer key or the layer itself does not decrypt: bad HMAC, bad options, unsupported cipher. */
export class DecryptFailedError extends ImageTsError {
  constructor(message: string) {
    super('DECRYPT_FAILED', message);
  }
}

/** A key broker, key provider or attestation service could not be reached or answered nonsense. */
export class KeyBrokerUnavailableError extends ImageTsError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('KEY_BROKER_UNAVAILABLE', message, options);
  }
}

/** The key broker answered, and refused to release the resource. */
export class KeyBrokerDeniedError extends ImageTsError {
  constructor(message: string) {
    super('KEY_BROKER_DENIED', message);
  }
}

export class AttestationFailedError extends ImageTsError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ATTESTATION_FAILED', message, options);
  }
}

/** A policy.json (or registries.d file) that does not parse; the message is containers/image's where it has one. */
export class PolicyInvalidError extends ImageTsError {
  constructor(message: string) {
    super('POLICY_INVALID', message);
  }
}

/** The policy refuses the image; the message names the scope and the requirement. */
export class PolicyDeniedError extends ImageTsError {
  constructor(message: string) {
    super('POLICY_DENIED', message);
  }
}

export class SignatureMissingError extends ImageTsError {
  constructor(message: string) {
    super('SIGNATURE_MISSING', message);
  }
}

export class SignatureInvalidError extends ImageTsError {
  constructor(message: string) {
    super('SIGNATURE_INVALID', message);
  }
}

/** The check of a sigstore signature that refused it, so callers and tests never read messages. */
export type SigstoreCheck =
  /** The bundle or `.sig` annotations do not parse, or carry the wrong kind of material. */
  | 'format'
  /** A keyless signature under a policy that wants a key, or the reverse. */
  | 'key-kind'
  /** The signature does not verify under the key or certificate. */
  | 'signature'
  /** The leaf does not chain to the policy's CA (or is not for code signing). */
  | 'chain'
  /** The leaf was not valid at the log entry's integratedTime. */
  | 'validity-at-log-time'
  /** SAN email/hostname or the Fulcio OIDC issuer is not the policy's. */
  | 'identity'
  /** The SET does not verify under a trusted Rekor key. */
  | 'set'
  /** The inclusion proof or its signed checkpoint does not verify. */
  | 'inclusion-proof'
  /** The log entry's body does not bind this signature, payload and certificate or key. */
  | 'log-body'
  /** No log evidence, or none that gives a trusted time, where the policy requires it. */
  | 'log-missing'
  /** The in-toto statement's subject is another digest (or the message digest another artifact). */
  | 'statement-subject';

/** SIGNATURE_INVALID naming which sigstore check failed. */
export class SigstoreCheckError extends SignatureInvalidError {
  constructor(readonly check: SigstoreCheck, message: string) {
    super(message);
  }
}

/** An unpack limit (max_unpacked_bytes_per_layer, ...) was reached; `limit` is the setting's name. */
export class LimitExceededError extends ImageTsError {
  constructor(readonly limit: string, message: string) {
    super('LIMIT_EXCEEDED', `${message} (${limit})`);
  }
}

/** Wraps anything unexpected so that callers only ever see ImageTsError. */
export function asImageTsError(err: unknown): ImageTsError {
  if (err instanceof ImageTsError) return err;
  const e = err as NodeJS.ErrnoException | undefined;
  if (e && typeof e === 'object' && typeof e.code === 'string') {
    if (e.code === 'ENOSPC' || e.code === 'EDQUOT') return new ImageTsError('NO_SPACE', 'no space left on device', { cause: err });
    if (e.code === 'ABORT_ERR') return new ImageTsError('INTERNAL', 'operation aborted', { cause: err });
    return new ImageTsError('IO', `${e.code}: ${e.syscall ?? 'i/o'}${e.path ? ` ${e.path}` : ''}`, { cause: err });
  }
  const message = err instanceof Error ? err.message : String(err);
  return new ImageTsError('INTERNAL', message, { cause: err });
}
