import { asImageTsError, type ErrorCode } from '../../../domain/errors.js';
import { RpcError, RpcStatus, type RpcStatusCode } from '../../outbound/rpc/rpc.js';

const STATUS: Partial<Record<ErrorCode, RpcStatusCode>> = {
  INVALID_REFERENCE: RpcStatus.INVALID_ARGUMENT,
  INVALID_ARGUMENT: RpcStatus.INVALID_ARGUMENT,
  PLATFORM_NOT_FOUND: RpcStatus.NOT_FOUND,
  NOT_FOUND: RpcStatus.NOT_FOUND,
  BUNDLE_NOT_FOUND: RpcStatus.NOT_FOUND,
  BUNDLE_EXISTS: RpcStatus.ALREADY_EXISTS,
  UNAUTHORIZED: RpcStatus.UNAUTHENTICATED,
  DENIED: RpcStatus.PERMISSION_DENIED,
  POLICY_DENIED: RpcStatus.PERMISSION_DENIED,
  SIGNATURE_MISSING: RpcStatus.PERMISSION_DENIED,
  SIGNATURE_INVALID: RpcStatus.PERMISSION_DENIED,
  UNENCRYPTED_IMAGE_REJECTED: RpcStatus.PERMISSION_DENIED,
  KEY_BROKER_DENIED: RpcStatus.PERMISSION_DENIED,
  MISSING_KEY: RpcStatus.PERMISSION_DENIED,
  NETWORK: RpcStatus.UNAVAILABLE,
  TLS: RpcStatus.UNAVAILABLE,
  KEY_BROKER_UNAVAILABLE: RpcStatus.UNAVAILABLE,
  UNSUPPORTED: RpcStatus.UNIMPLEMENTED,
  NO_SPACE: RpcStatus.RESOURCE_EXHAUSTED,
};

/**
 * A failure as the RPC answer: the gRPC status its code maps to, and the
 * image-ts code at the head of the message so clients can act on it. Never
 * by message text.
 */
export function rpcErrorOf(err: unknown, aborted: boolean): RpcError {
  if (err instanceof RpcError) return err;
  const e = asImageTsError(err);
  const status = aborted ? RpcStatus.CANCELLED : (STATUS[e.code] ?? RpcStatus.INTERNAL);
  return new RpcError(status, `${e.code}: ${e.message.replace(/\s*\n\s*/g, ' ')}`);
}
