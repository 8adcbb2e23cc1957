import { ImageTsError, type ErrorCode } from '../../../domain/errors.js';

/** gRPC status codes; ttrpc carries the same numbers in google.rpc.Status. */
export const RpcStatus = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;
export type RpcStatusCode = number;

const DOMAIN_CODE: Readonly<Record<number, ErrorCode>> = {
  [RpcStatus.INVALID_ARGUMENT]: 'INVALID_ARGUMENT',
  [RpcStatus.DEADLINE_EXCEEDED]: 'NETWORK',
  [RpcStatus.NOT_FOUND]: 'NOT_FOUND',
  [RpcStatus.PERMISSION_DENIED]: 'DENIED',
  [RpcStatus.UNIMPLEMENTED]: 'UNSUPPORTED',
  [RpcStatus.UNAVAILABLE]: 'NETWORK',
  [RpcStatus.UNAUTHENTICATED]: 'UNAUTHORIZED',
};

/**
 * A non-OK status, on either side: a handler throws it to choose the status
 * it answers with, a client rejects with it. `status` is the gRPC code;
 * `code` stays an ImageTsError code so that an unmapped one is still typed.
 */
export class RpcError extends ImageTsError {
  readonly status: RpcStatusCode;
  constructor(status: RpcStatusCode, message: string, options?: { cause?: unknown }) {
    super(DOMAIN_CODE[status] ?? 'INTERNAL', message, options);
    this.status = status;
  }

  /** No answer at all, or none in time: the peer may well be fine later. */
  get unreachable(): boolean {
    return this.status === RpcStatus.UNAVAILABLE || this.status === RpcStatus.DEADLINE_EXCEEDED;
  }
}

/** Who called: the process behind a unix socket (SO_PEERCRED), or a TCP peer's address. */
export type RpcPeer =
  | { readonly pid: number; readonly uid: number; readonly gid: number }
  | { readonly address: string };

export interface RpcContext {
  /** Aborted when the caller goes away, its deadline passes or the server closes. */
  readonly signal: AbortSignal;
  /** Request metadata; the first value of a repeated key. */
  readonly metadata: ReadonlyMap<string, string>;
  /** Known when the server was given it (serve's listeners are). */
  readonly peer?: RpcPeer | undefined;
}

/** One unary method: request message bytes in, response message bytes out. */
export type RpcHandler = (payload: Buffer, ctx: RpcContext) => Promise<Buffer>;

/** service name (`package.Service`) → method name → handler. */
export type RpcServices = Readonly<Record<string, Readonly<Record<string, RpcHandler>>>>;

export interface RpcCallOptions {
  readonly signal?: AbortSignal | undefined;
  /** Covers connecting as well as the call. */
  readonly timeoutMs?: number | undefined;
  readonly metadata?: Readonly<Record<string, string>> | undefined;
}

/** What the CDH and AA clients need from gRPC and ttrpc alike. */
export interface RpcTransport {
  /** `ttrpc unix:///…` or `gRPC host:port`, for messages. */
  readonly description: string;
  unary(service: string, method: string, request: Buffer, options?: RpcCallOptions): Promise<Buffer>;
  close(): void;
}

export const DEFAULT_RPC_TIMEOUT_MS = 60_000;

/**
 * The status a handler's failure answers with. Only RpcError chooses; any
 * other failure is INTERNAL, and only ImageTsError messages (written to be
 * shown) travel, so that nothing unexpected leaks to the peer.
 */
export function statusOfError(err: unknown): { status: RpcStatusCode; message: string } {
  if (err instanceof RpcError) return { status: err.status, message: err.message };
  if (err instanceof ImageTsError) return { status: RpcStatus.INTERNAL, message: err.message };
  return { status: RpcStatus.INTERNAL, message: 'internal error' };
}

/** Peer text bounded and on one line before it goes into our messages. */
export function clipPeerText(text: string, max = 300): string {
  const line = text.replace(/\s+/g, ' ').trim();
  return line.length > max ? `${line.slice(0, max)}…` : line;
}
