import { lstatSync, unlinkSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { abortError } from '../http/transport-errors.js';
import { ProtoReader, ProtoWriter, decodeStatus, encodeStatus } from './protobuf.js';
import {
  DEFAULT_RPC_TIMEOUT_MS,
  RpcError,
  RpcStatus,
  statusOfError,
  type RpcCallOptions,
  type RpcHandler,
  type RpcPeer,
  type RpcServices,
  type RpcTransport,
} from './rpc.js';

export { RpcError, RpcStatus } from './rpc.js';

/**
 * containerd's ttrpc: gRPC-like unary calls over one unix socket, each
 * message a 10-byte header (u32 BE length, u32 BE stream id, u8 type, u8
 * flags) and a protobuf body. Clients pick odd stream ids and may have many
 * calls in flight; responses come back in any order.
 */

export const TTRPC_MAX_MESSAGE = 4 * 1024 * 1024;
const HEADER = 10;
const TYPE_REQUEST = 1;
const TYPE_RESPONSE = 2;
const MAX_STREAM_ID = 0xffffffff;

interface Frame {
  readonly streamId: number;
  readonly type: number;
  readonly body: Buffer;
}

function encodeFrame(streamId: number, type: number, body: Buffer): Buffer {
  const header = Buffer.alloc(HEADER);
  header.writeUInt32BE(body.length, 0);
  header.writeUInt32BE(streamId, 4);
  header.writeUInt8(type, 8);
  header.writeUInt8(0, 9);
  return Buffer.concat([header, body]);
}

/**
 * Cuts a byte stream into frames. Holds at most one frame; the body of an
 * oversized frame is skipped as it arrives, never buffered, and reported
 * so that its stream gets an error and the connection stays usable.
 */
class FrameReader {
  private chunks: Buffer[] = [];
  private size = 0;
  private skip = 0;

  constructor(
    private readonly onFrame: (f: Frame) => void,
    private readonly onOversize: (streamId: number, type: number, length: number) => void,
  ) {}

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.size += chunk.length;
    for (;;) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, this.size);
        this.take(n);
        this.skip -= n;
        if (this.skip > 0) return;
      }
      if (this.size < HEADER) return;
      const header = this.peekHeader();
      const length = header.readUInt32BE(0);
      const streamId = header.readUInt32BE(4);
      const type = header.readUInt8(8);
      if (length > TTRPC_MAX_MESSAGE) {
        this.take(HEADER);
        this.skip = length;
        this.onOversize(streamId, type, length);
        continue;
      }
      if (this.size < HEADER + length) return;
      this.take(HEADER);
      this.onFrame({ streamId, type, body: this.take(length) });
    }
  }

  private peekHeader(): Buffer {
    while (this.chunks[0]!.length < HEADER) {
      const [a, b] = this.chunks.splice(0, 2);
      this.chunks.unshift(Buffer.concat([a!, b!]));
    }
    return this.chunks[0]!;
  }

  private take(n: number): Buffer {
    if (n === 0) return Buffer.alloc(0);
    const first = this.chunks[0]!;
    this.size -= n;
    if (first.length >= n) {
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    let off = 0;
    while (off < n) {
      const c = this.chunks[0]!;
      const k = Math.min(c.length, n - off);
      c.copy(out, off, 0, k);
      if (k === c.length) this.chunks.shift();
      else this.chunks[0] = c.subarray(k);
      off += k;
    }
    return out;
  }
}

function encodeRequest(service: string, method: string, payload: Buffer, timeoutMs: number, metadata: Readonly<Record<string, string>>): Buffer {
  const w = new ProtoWriter()
    .string(1, service)
    .string(2, method)
    .bytes(3, payload)
    .int64(4, BigInt(Math.round(timeoutMs)) * 1_000_000n);
  for (const [k, v] of Object.entries(metadata)) w.message(5, new ProtoWriter().string(1, k).string(2, v));
  return w.finish();
}

function encodeResponse(status: number, message: string, payload: Buffer | undefined): Buffer {
  const w = new ProtoWriter();
  if (status !== RpcStatus.OK) w.message(1, encodeStatus({ code: status, message }));
  return w.bytes(2, payload).finish();
}

/** `unix:///run/x.sock`, `unix://x.sock` or a plain path → the socket path. */
export function ttrpcSocketPath(target: string): string {
  const path = target.startsWith('unix://') ? target.slice('unix://'.length) : target.startsWith('unix:') ? target.slice('unix:'.length) : target;
  if (!path || /^[a-z][a-z0-9+.-]*:\/\//i.test(path)) throw new RpcError(RpcStatus.INVALID_ARGUMENT, `ttrpc needs a unix socket, not ${JSON.stringify(target)}`);
  return path;
}

const errnoCode = (err: unknown): string =>
  err && typeof err === 'object' && 'code' in err && typeof err.code === 'string' ? err.code : 'connection error';

interface Pending {
  settle(err: Error | undefined, value?: Buffer): void;
}

export interface TtrpcClientOptions {
  /** For calls that give no timeout of their own. */
  readonly timeoutMs?: number;
}

/**
 * One connection, opened on the first call and again on the first call
 * after it is lost; every call in flight shares it. The socket does not keep
 * the process alive while no call is pending.
 */
export class TtrpcClient implements RpcTransport {
  readonly path: string;
  readonly description: string;
  private socket: Socket | undefined;
  private connecting: Promise<Socket> | undefined;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private closed = false;

  constructor(target: string, private readonly options: TtrpcClientOptions = {}) {
    this.path = ttrpcSocketPath(target);
    this.description = `ttrpc unix://${this.path}`;
  }

  unary(service: string, method: string, request: Buffer, options?: RpcCallOptions): Promise<Buffer> {
    return this.call(service, method, request, options);
  }

  call(service: string, method: string, payload: Buffer, options: RpcCallOptions = {}): Promise<Buffer> {
    const { signal } = options;
    if (signal?.aborted) return Promise.reject(abortError(signal));
    if (this.closed) return Promise.reject(new RpcError(RpcStatus.CANCELLED, `${this.description}: client is closed`));
    const timeoutMs = options.timeoutMs ?? this.options.timeoutMs ?? DEFAULT_RPC_TIMEOUT_MS;
    const body = encodeRequest(service, method, payload, timeoutMs, options.metadata ?? {});
    const what = `${service}/${method} over ${this.description}`;
    if (body.length > TTRPC_MAX_MESSAGE) {
      return Promise.reject(new RpcError(RpcStatus.RESOURCE_EXHAUSTED, `${what}: request of ${body.length} bytes exceeds the ttrpc limit of ${TTRPC_MAX_MESSAGE}`));
    }
    return new Promise<Buffer>((resolve, reject) => {
      let done = false;
      let id: number | undefined;
      const settle = (err: Error | undefined, value?: Buffer): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        if (id !== undefined) this.pending.delete(id);
        this.updateRef();
        if (err) reject(err);
        else resolve(value ?? Buffer.alloc(0));
      };
      const timer = setTimeout(() => settle(new RpcError(RpcStatus.DEADLINE_EXCEEDED, `${what}: no answer within ${timeoutMs} ms`)), timeoutMs);
      const onAbort = (): void => settle(abortError(signal ?? AbortSignal.abort()));
      signal?.addEventListener('abort', onAbort, { once: true });
      this.connect().then(
        (socket) => {
          if (done) return;
          id = this.allocateId();
          this.pending.set(id, { settle });
          this.updateRef();
          socket.write(encodeFrame(id, TYPE_REQUEST, body));
        },
        (err: unknown) => settle(err instanceof Error ? err : new RpcError(RpcStatus.UNAVAILABLE, `${what}: ${String(err)}`)),
      );
    });
  }

  /** Rejects every pending call; later calls fail. */
  close(): void {
    this.closed = true;
    this.socket?.destroy();
    this.failAll(new RpcError(RpcStatus.CANCELLED, `${this.description}: client closed`));
  }

  private allocateId(): number {
    for (;;) {
      const id = this.nextId;
      this.nextId = this.nextId + 2 > MAX_STREAM_ID ? 1 : this.nextId + 2;
      if (!this.pending.has(id)) return id;
    }
  }

  private connect(): Promise<Socket> {
    if (this.socket && !this.socket.destroyed) return Promise.resolve(this.socket);
    this.connecting ??= new Promise<Socket>((resolve, reject) => {
      const s = createConnection(this.path);
      const onError = (err: unknown): void => {
        this.connecting = undefined;
        s.destroy();
        reject(new RpcError(RpcStatus.UNAVAILABLE, `cannot connect to ${this.description}: ${errnoCode(err)}`, { cause: err }));
      };
      s.once('error', onError);
      s.once('connect', () => {
        s.off('error', onError);
        this.connecting = undefined;
        this.attach(s);
        resolve(s);
      });
    });
    return this.connecting;
  }

  private attach(s: Socket): void {
    this.socket = s;
    const reader = new FrameReader(
      (f) => this.onFrame(f),
      (streamId, _type, length) =>
        this.pending.get(streamId)?.settle(new RpcError(RpcStatus.RESOURCE_EXHAUSTED, `${this.description}: response of ${length} bytes exceeds the ttrpc limit`)),
    );
    s.on('data', (chunk: Buffer) => reader.push(chunk));
    s.on('error', () => undefined); // 'close' follows and says what matters
    s.on('close', () => {
      if (this.socket === s) this.socket = undefined;
      this.failAll(new RpcError(RpcStatus.UNAVAILABLE, `${this.description}: connection lost`));
    });
    this.updateRef();
  }

  private onFrame(f: Frame): void {
    if (f.type !== TYPE_RESPONSE) return;
    const call = this.pending.get(f.streamId);
    if (!call) return; // the caller gave up already
    try {
      const r = ProtoReader.decode(f.body);
      const status = r.has(1) ? decodeStatus(r.bytes(1)) : undefined;
      if (status && status.code !== RpcStatus.OK) {
        call.settle(new RpcError(status.code, status.message));
        return;
      }
      call.settle(undefined, Buffer.from(r.bytes(2)));
    } catch (err) {
      call.settle(new RpcError(RpcStatus.UNAVAILABLE, `${this.description}: malformed response`, { cause: err }));
    }
  }

  private failAll(err: RpcError): void {
    for (const call of [...this.pending.values()]) call.settle(err);
  }

  private updateRef(): void {
    if (!this.socket) return;
    if (this.pending.size > 0) this.socket.ref();
    else this.socket.unref();
  }
}

export interface TtrpcServerOptions {
  /** Requests one connection may have in flight; more are answered RESOURCE_EXHAUSTED. */
  readonly maxInFlightPerConnection?: number;
  readonly maxConnections?: number;
}

/**
 * Serves registered unary methods on a unix socket. Handlers run
 * concurrently; their signal is aborted when the client's timeout passes,
 * the connection drops or the server closes.
 */
export class TtrpcServer {
  private readonly handlers = new Map<string, RpcHandler>();
  private readonly connections = new Set<Socket>();
  private server: Server | undefined;
  private accepted = 0;
  private socketPath: string | undefined;

  constructor(private readonly options: TtrpcServerOptions = {}) {}

  register(service: string, method: string, handler: RpcHandler): this {
    this.handlers.set(`${service}/${method}`, handler);
    return this;
  }

  registerServices(services: RpcServices): this {
    for (const [service, methods] of Object.entries(services)) {
      for (const [method, handler] of Object.entries(methods)) this.register(service, method, handler);
    }
    return this;
  }

  /** Connections accepted so far. */
  get connectionsAccepted(): number {
    return this.accepted;
  }

  get path(): string | undefined {
    return this.socketPath;
  }

  /** Listens on a unix socket path (or `unix://` target); a stale socket file nobody serves is replaced. */
  async listen(target: string): Promise<void> {
    if (this.server) throw new RpcError(RpcStatus.FAILED_PRECONDITION, 'ttrpc server is already listening');
    const path = ttrpcSocketPath(target);
    const server = createServer((s) => this.serveConnection(s));
    server.maxConnections = this.options.maxConnections ?? 256;
    await removeStaleSocket(path);
    await listenOn(server, path);
    this.server = server;
    this.socketPath = path;
  }

  /** Stops listening, aborts handlers in flight and drops every connection. */
  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const s of this.connections) s.destroy();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Serves one connection, accepted here or by a listener of the caller's (which may know its peer). */
  serveConnection(s: Socket, peer?: RpcPeer): void {
    this.accepted++;
    this.connections.add(s);
    const inFlight = new Map<number, AbortController>();
    const maxInFlight = this.options.maxInFlightPerConnection ?? 128;
    const respond = (streamId: number, status: number, message: string, payload?: Buffer): void => {
      if (s.destroyed) return;
      let body = encodeResponse(status, message, payload);
      if (body.length > TTRPC_MAX_MESSAGE) {
        body = encodeResponse(RpcStatus.RESOURCE_EXHAUSTED, `response of ${body.length} bytes exceeds the ttrpc limit of ${TTRPC_MAX_MESSAGE}`, undefined);
      }
      s.write(encodeFrame(streamId, TYPE_RESPONSE, body));
    };
    const reader = new FrameReader(
      (f) => {
        if (f.type !== TYPE_REQUEST) return; // unary only: stray data frames are ignored
        if (inFlight.has(f.streamId)) return;
        if (inFlight.size >= maxInFlight) {
          respond(f.streamId, RpcStatus.RESOURCE_EXHAUSTED, `more than ${maxInFlight} requests in flight on one connection`);
          return;
        }
        this.dispatch(f, inFlight, respond, peer);
      },
      (streamId, type, length) => {
        if (type === TYPE_REQUEST) respond(streamId, RpcStatus.RESOURCE_EXHAUSTED, `request of ${length} bytes exceeds the ttrpc limit of ${TTRPC_MAX_MESSAGE}`);
      },
    );
    s.on('data', (chunk: Buffer) => reader.push(chunk));
    s.on('error', () => undefined);
    s.on('close', () => {
      this.connections.delete(s);
      for (const c of inFlight.values()) c.abort(new RpcError(RpcStatus.CANCELLED, 'ttrpc connection closed'));
    });
  }

  private dispatch(
    f: Frame,
    inFlight: Map<number, AbortController>,
    respond: (streamId: number, status: number, message: string, payload?: Buffer) => void,
    peer: RpcPeer | undefined,
  ): void {
    let service: string;
    let method: string;
    let payload: Buffer;
    let timeoutNano: bigint;
    let metadata: Map<string, string>;
    try {
      const r = ProtoReader.decode(f.body);
      service = r.string(1);
      method = r.string(2);
      payload = r.bytes(3);
      timeoutNano = r.int64(4);
      metadata = new Map();
      for (const kv of r.messages(5)) if (!metadata.has(kv.string(1))) metadata.set(kv.string(1), kv.string(2));
    } catch {
      respond(f.streamId, RpcStatus.INVALID_ARGUMENT, 'malformed ttrpc request');
      return;
    }
    const handler = this.handlers.get(`${service}/${method}`);
    if (!handler) {
      respond(f.streamId, RpcStatus.UNIMPLEMENTED, `${service}/${method} is not implemented`);
      return;
    }
    const controller = new AbortController();
    inFlight.set(f.streamId, controller);
    let timer: NodeJS.Timeout | undefined;
    if (timeoutNano > 0n) {
      const ms = Number(timeoutNano / 1_000_000n);
      timer = setTimeout(() => controller.abort(new RpcError(RpcStatus.DEADLINE_EXCEEDED, `${service}/${method}: deadline exceeded`)), Math.min(ms, 2 ** 31 - 1));
      // a handler that ignores its signal must not hold the process open
      timer.unref();
      controller.signal.addEventListener('abort', () => clearTimeout(timer), { once: true });
    }
    Promise.resolve()
      .then(() => handler(payload, { signal: controller.signal, metadata, peer }))
      .then(
        (out) => respond(f.streamId, RpcStatus.OK, '', out),
        (err: unknown) => {
          const reason: unknown = controller.signal.reason;
          const { status, message } = !(err instanceof RpcError) && reason instanceof RpcError ? statusOfError(reason) : statusOfError(err);
          respond(f.streamId, status, message);
        },
      )
      .finally(() => {
        clearTimeout(timer);
        inFlight.delete(f.streamId);
      });
  }
}

function listenOn(server: Server, path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    server.once('error', onError);
    server.listen(path, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

/** A socket file left by a server that died is removed; one that answers is left alone (listen then fails). */
export async function removeStaleSocket(path: string): Promise<void> {
  let isSocket = false;
  try {
    isSocket = lstatSync(path).isSocket();
  } catch {
    return;
  }
  if (isSocket && !(await socketAnswers(path))) {
    try {
      unlinkSync(path);
    } catch {
      // raced with someone else; listen will tell
    }
  }
}

function socketAnswers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}
