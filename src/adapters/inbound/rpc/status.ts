import { asImageTsError, type ErrorCode } from '../../../domain/errors.js';
import { RpcError, RpcStatus, type RpcHandler, type RpcPeer, type RpcServices, type RpcStatusCode } from '../../outbound/rpc/rpc.js';

const STATUS: Partial<Record<ErrorCode, RpcStatusCode>> = {
  INVALID_REFERENCE: RpcStatus.INVALID_ARGUMENT,
  INVALID_ARGUMENT: RpcStatus.INVALID_ARGUMENT,
  PLATFORM_NOT_FOUND: RpcStatus.NOT_FOUND,
  NOT_FOUND: RpcStatus.NOT_FOUND,
  BUNDLE_NOT_FOUND: RpcStatus.NOT_FOUND,
  BUNDLE_EXISTS: RpcStatus.ALREADY_EXISTS,
  UNAUTHORIZED: RpcStatus.UNAUTHENTICATED,
  DENIED: RpcStatus.PERMISSION_DENIED,
  BLOCKED: RpcStatus.PERMISSION_DENIED,
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
  LIMIT_EXCEEDED: RpcStatus.RESOURCE_EXHAUSTED,
};

/** Who called, for a call's log line: the process behind a unix socket, or a TCP address. */
export function peerFields(peer: RpcPeer | undefined): Record<string, unknown> {
  if (!peer) return {};
  return 'address' in peer ? { peer: peer.address } : { peer_uid: peer.uid, peer_pid: peer.pid };
}

/**
 * A failure as the RPC answer: the gRPC status its code maps to, and the
 * image-ts code at the head of the message so clients can act on it. Never
 * by message text.
 */
export function rpcErrorOf(err: unknown, signal: AbortSignal): RpcError {
  if (err instanceof RpcError) return err;
  const e = asImageTsError(err);
  const timedOut = signal.aborted && signal.reason instanceof Error && signal.reason.name === 'TimeoutError';
  const status = timedOut ? RpcStatus.DEADLINE_EXCEEDED : signal.aborted ? RpcStatus.CANCELLED : (STATUS[e.code] ?? RpcStatus.INTERNAL);
  return new RpcError(status, `${e.code}: ${e.message.replace(/\s*\n\s*/g, ' ')}`);
}

/**
 * Every call gets a deadline: the client's (gRPC deadline, ttrpc
 * timeout_nano) when it set one, this default otherwise, so that a stuck
 * registry cannot hold a pull forever.
 */
export function withDeadline(services: RpcServices, defaultMs: number): RpcServices {
  const out: Record<string, Record<string, RpcHandler>> = {};
  for (const [service, methods] of Object.entries(services)) {
    out[service] = {};
    for (const [method, handler] of Object.entries(methods)) {
      out[service][method] = (payload, ctx) => handler(payload, { ...ctx, signal: AbortSignal.any([ctx.signal, AbortSignal.timeout(defaultMs)]) });
    }
  }
  return out;
}
