import { readFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import type {
  ChannelCredentials,
  Client,
  MethodDefinition,
  Server,
  ServerUnaryCall,
  ServiceDefinition,
  UntypedServiceImplementation,
  sendUnaryData,
} from '@grpc/grpc-js';
import { ConfigFileError } from '../../../domain/errors.js';
import { abortError } from '../http/transport-errors.js';
import { lazyImport } from '../lazy.js';
import { removeStaleSocket } from './ttrpc.js';
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
import { TTRPC_MAX_MESSAGE } from './ttrpc.js';

/**
 * gRPC without generated code: messages stay bytes (encoded with
 * ./protobuf.ts by the caller), so serializers are the identity and a
 * service definition is just a list of paths.
 */

const identity = (b: Buffer): Buffer => b;

/** grpc-js is a third of the CLI's code: a pull that never speaks gRPC never loads it. */
export const loadGrpc = lazyImport(() => import('@grpc/grpc-js'));

/** ocicrypt's `grpc-tls` object, with file paths resolved by the caller. */
export interface GrpcTlsOptions {
  readonly rootCaFile?: string | undefined;
  readonly certFile?: string | undefined;
  readonly keyFile?: string | undefined;
  readonly serverName?: string | undefined;
  readonly insecureSkipVerify?: boolean | undefined;
}

/**
 * `unix:///path` and `host:port` go to grpc-js as they are; `http://`,
 * `https://` and `tcp://` (what Rust clients accept) lose the scheme; a bare
 * absolute path is a unix socket.
 */
export function grpcTarget(target: string): string {
  const t = target.trim();
  if (t.startsWith('/')) return `unix://${t}`;
  const m = /^(?:https?|tcp):\/\/(.+?)\/?$/i.exec(t);
  return m ? m[1]! : t;
}

function readTlsFile(what: string, path: string | undefined): Buffer | null {
  if (!path) return null;
  try {
    return readFileSync(path);
  } catch (err) {
    const code = err && typeof err === 'object' && 'code' in err ? String(err.code) : 'unreadable';
    throw new ConfigFileError(`grpc-tls ${what} ${path} cannot be read (${code})`);
  }
}

export async function createGrpcClient(target: string, tls?: GrpcTlsOptions): Promise<Client> {
  const { Client, credentials } = await loadGrpc();
  let creds: ChannelCredentials = credentials.createInsecure();
  const options: Record<string, string> = {};
  if (tls) {
    creds = credentials.createSsl(
      readTlsFile('root-ca-file', tls.rootCaFile),
      readTlsFile('key-file', tls.keyFile),
      readTlsFile('cert-file', tls.certFile),
      tls.insecureSkipVerify ? { rejectUnauthorized: false, checkServerIdentity: () => undefined } : {},
    );
    if (tls.serverName) {
      options['grpc.ssl_target_name_override'] = tls.serverName;
      options['grpc.default_authority'] = tls.serverName;
    }
  }
  return new Client(grpcTarget(target), creds, options);
}

/** grpc-js connection errors trail an empty resolver note and nest "Error: ". */
const tidyDetails = (details: string): string =>
  details.replace(/\.?\s*Resolution note:\s*$/, '').replace(/Last error: Error: /, 'last error: ');

/** One unary call; a non-OK status rejects with RpcError, an abort with the signal's reason. */
export async function grpcUnaryCall(client: Client, path: string, request: Buffer, options: RpcCallOptions = {}): Promise<Buffer> {
  const { signal } = options;
  if (signal?.aborted) throw abortError(signal);
  const timeoutMs = options.timeoutMs ?? DEFAULT_RPC_TIMEOUT_MS;
  const { Metadata } = await loadGrpc();
  if (signal?.aborted) throw abortError(signal);
  const metadata = new Metadata();
  for (const [k, v] of Object.entries(options.metadata ?? {})) metadata.set(k, v);
  return await new Promise<Buffer>((resolve, reject) => {
    let done = false;
    const call = client.makeUnaryRequest<Buffer, Buffer>(
      path,
      identity,
      identity,
      request,
      metadata,
      { deadline: Date.now() + timeoutMs },
      (err, value) => {
        if (done) return;
        done = true;
        signal?.removeEventListener('abort', onAbort);
        if (err) reject(new RpcError(err.code, tidyDetails(err.details || err.message), { cause: err }));
        else resolve(value ?? Buffer.alloc(0));
      },
    );
    const onAbort = (): void => {
      if (done) return;
      done = true;
      call.cancel();
      reject(abortError(signal ?? AbortSignal.abort()));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** A client for one target, made on first use. */
export class GrpcTransport implements RpcTransport {
  readonly description: string;
  private client: Promise<Client> | undefined;

  constructor(
    readonly target: string,
    private readonly options: { readonly tls?: GrpcTlsOptions | undefined; readonly timeoutMs?: number | undefined } = {},
  ) {
    this.description = `gRPC ${target}`;
  }

  async unary(service: string, method: string, request: Buffer, options: RpcCallOptions = {}): Promise<Buffer> {
    const made = (this.client ??= createGrpcClient(this.target, this.options.tls));
    // A failed creation (an unreadable TLS file) is retried on the next call, not cached.
    made.catch(() => {
      if (this.client === made) this.client = undefined;
    });
    return grpcUnaryCall(await made, `/${service}/${method}`, request, {
      ...options,
      timeoutMs: options.timeoutMs ?? this.options.timeoutMs,
    });
  }

  close(): void {
    const client = this.client;
    this.client = undefined;
    void client?.then((c) => c.close(), () => undefined);
  }
}

type BufferCall = ServerUnaryCall<Buffer, Buffer>;

/**
 * grpc-js tells a handler only getPeer(), the connection's remoteAddress,
 * which a unix socket lacks: the listener that knows the peer's credentials
 * writes them there, and the handler reads them back.
 */
const UNIX_PEER = /^unix-peer:(\d+),(\d+),(\d+)$/;

export function tagUnixPeer(socket: Socket, peer: { readonly pid: number; readonly uid: number; readonly gid: number }): void {
  Object.defineProperty(socket, 'remoteAddress', { value: `unix-peer:${peer.pid},${peer.uid},${peer.gid}`, configurable: true });
}

function peerOf(call: BufferCall): RpcPeer | undefined {
  const text = call.getPeer();
  const m = UNIX_PEER.exec(text);
  if (m) return { pid: Number(m[1]), uid: Number(m[2]), gid: Number(m[3]) };
  return text && text !== 'unknown' ? { address: text } : undefined;
}

function unaryImplementation(handler: RpcHandler): (call: BufferCall, callback: sendUnaryData<Buffer>) => void {
  return (call, callback) => {
    const controller = new AbortController();
    call.on('cancelled', () => controller.abort(new RpcError(RpcStatus.CANCELLED, 'call cancelled')));
    const deadline = call.getDeadline();
    const ms = (deadline instanceof Date ? deadline.getTime() : deadline) - Date.now();
    const timer = Number.isFinite(ms)
      ? setTimeout(() => controller.abort(new RpcError(RpcStatus.DEADLINE_EXCEEDED, 'deadline exceeded')), Math.max(0, Math.min(ms, 2 ** 31 - 1)))
      : undefined;
    // a handler that ignores its signal must not hold the process open
    timer?.unref();
    controller.signal.addEventListener('abort', () => clearTimeout(timer), { once: true });
    const metadata = new Map<string, string>();
    for (const [k, v] of Object.entries(call.metadata.getMap())) metadata.set(k, typeof v === 'string' ? v : v.toString('base64'));
    Promise.resolve()
      .then(() => handler(call.request, { signal: controller.signal, metadata, peer: peerOf(call) }))
      .then(
        (out) => callback(null, out),
        (err: unknown) => {
          const { status, message } = statusOfError(err);
          callback({ code: status, details: message });
        },
      )
      .finally(() => clearTimeout(timer));
  };
}

/** Adds `/${service}/${method}` for every handler, with bytes in and out. */
export function addUnaryService(server: Server, service: string, methods: Readonly<Record<string, RpcHandler>>): void {
  const definition: Record<string, MethodDefinition<Buffer, Buffer>> = {};
  const implementation: UntypedServiceImplementation = {};
  for (const [method, handler] of Object.entries(methods)) {
    definition[method] = {
      path: `/${service}/${method}`,
      requestStream: false,
      responseStream: false,
      requestSerialize: identity,
      requestDeserialize: identity,
      responseSerialize: identity,
      responseDeserialize: identity,
      originalName: method,
    };
    implementation[method] = unaryImplementation(handler);
  }
  server.addService(definition as ServiceDefinition, implementation);
}

export interface GrpcServerHandle {
  readonly server: Server;
  /** What a client dials: `unix:///path` or `127.0.0.1:port`. */
  readonly target: string;
  /** Waits up to graceMs for calls in flight, then cancels them. */
  close(graceMs?: number): Promise<void>;
}

/** PEM contents for a server that requires client certificates (mutual TLS). */
export interface GrpcServerTls {
  readonly cert: Buffer;
  readonly key: Buffer;
  /** Clients must present a certificate that this CA signed. */
  readonly clientCa: Buffer;
}

/** A server whose messages are capped as ttrpc's are: a peer cannot make us buffer more. */
async function newServer(services: RpcServices): Promise<Server> {
  const { Server } = await loadGrpc();
  const server = new Server({ 'grpc.max_receive_message_length': TTRPC_MAX_MESSAGE, 'grpc.max_send_message_length': TTRPC_MAX_MESSAGE });
  for (const [service, methods] of Object.entries(services)) addUnaryService(server, service, methods);
  return server;
}

function closer(server: Server): (graceMs?: number) => Promise<void> {
  return (graceMs = 2000) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(() => server.forceShutdown(), graceMs);
      server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
}

/**
 * Serves the services on `unix:///path` or `host:port` (port 0 picks one):
 * plaintext, or with `tls` only to clients whose certificate its CA signed.
 */
export async function listenGrpc(address: string, services: RpcServices, tls?: GrpcServerTls): Promise<GrpcServerHandle> {
  const { ServerCredentials } = await loadGrpc();
  const server = await newServer(services);
  const bindTo = grpcTarget(address);
  if (bindTo.startsWith('unix:')) await removeStaleSocket(bindTo.replace(/^unix:(\/\/)?/, ''));
  const credentials = tls
    ? ServerCredentials.createSsl(tls.clientCa, [{ private_key: tls.key, cert_chain: tls.cert }], true)
    : ServerCredentials.createInsecure();
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(bindTo, credentials, (err, p) => (err ? reject(err) : resolve(p))),
  );
  const target = bindTo.startsWith('unix:') ? bindTo : `${bindTo.replace(/:\d+$/, '')}:${port}`;
  return { server, target, close: closer(server) };
}

/** A gRPC server fed connections that the caller accepted (and vetted) itself. */
export interface GrpcConnectionSink {
  serveConnection(socket: Socket): void;
  close(graceMs?: number): Promise<void>;
}

export async function grpcConnectionSink(services: RpcServices): Promise<GrpcConnectionSink> {
  const { ServerCredentials } = await loadGrpc();
  const server = await newServer(services);
  const injector = server.createConnectionInjector(ServerCredentials.createInsecure());
  const close = closer(server);
  return {
    serveConnection: (socket) => injector.injectConnection(socket),
    close: async (graceMs) => {
      await close(graceMs);
      injector.destroy();
    },
  };
}
