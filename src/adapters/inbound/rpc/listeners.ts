import { isIP } from 'node:net';
import { createServer, type Server, type Socket } from 'node:net';
import { chmod, chown, lstat, mkdir, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { InvalidArgumentError, asImageTsError } from '../../../domain/errors.js';
import type { Logger } from '../../../ports/observability/logger.js';
import { errnoCode, tryNativeSyscalls } from '../../outbound/native/syscalls.js';
import { grpcTarget } from '../../outbound/rpc/grpc.js';
import { removeStaleSocket } from '../../outbound/rpc/ttrpc.js';

/** Who may connect to serve's unix sockets. */
export interface SocketAccess {
  /** A group whose members may call too: sockets 0660 and their directory 0750 instead of 0600 and 0700. */
  readonly group?: number | undefined;
  /** When set, only these uids may call, whatever the file modes allow (root included only if listed). */
  readonly allowedUids?: readonly number[] | undefined;
}

export type Endpoint =
  | { readonly kind: 'unix'; readonly path: string }
  | { readonly kind: 'tcp'; readonly address: string; readonly loopback: boolean };

/** `unix:///path`, `unix:path` or `/path`; anything else is `host:port` (TCP). */
export function parseEndpoint(target: string): Endpoint {
  const t = grpcTarget(target);
  if (t.startsWith('unix:')) return { kind: 'unix', path: t.replace(/^unix:(\/\/)?/, '') };
  const m = /^\[?(.+?)\]?:(\d+)$/.exec(t);
  if (!m) throw new InvalidArgumentError(`${JSON.stringify(target)} is neither unix:///PATH nor HOST:PORT`);
  return { kind: 'tcp', address: t, loopback: isLoopback(m[1]!) };
}

/** 127.0.0.0/8, ::1 (also v4-mapped) and localhost: reachable from this machine only. */
export function isLoopback(host: string): boolean {
  const h = host.toLowerCase();
  if (h === 'localhost' || h === '::1' || h === '0:0:0:0:0:0:0:1') return true;
  const v4 = h.startsWith('::ffff:') ? h.slice('::ffff:'.length) : h;
  return isIP(v4) === 4 && v4.startsWith('127.');
}

/** A gid from `NAME` (looked up in /etc/group) or a number. */
export function groupId(spec: string, groupFile: string): number {
  if (/^\d+$/.test(spec)) return Number(spec);
  for (const line of groupFile.split('\n')) {
    const [name, , gid] = line.split(':');
    if (name === spec && gid !== undefined && /^\d+$/.test(gid)) return Number(gid);
  }
  throw new InvalidArgumentError(`no group ${JSON.stringify(spec)} in /etc/group`);
}

export interface UnixPeer {
  readonly pid: number;
  readonly uid: number;
  readonly gid: number;
}

export interface Listener {
  readonly path: string;
  close(): Promise<void>;
}

/**
 * A unix socket only its owner (or the group) can connect to, whatever the
 * umask, each connection vetted by its peer's credentials before `serve`
 * sees it.
 *
 * - Its directory, when missing, is made 0700 (0750 with a group).
 * - A stale socket nobody answers on is replaced; one in use, and anything
 *   that is not a socket, is refused and left alone.
 * - The socket is bound under umask 0177, so it never exists with wider
 *   modes, then given the group and 0660 when there is one.
 */
export async function listenUnix(
  path: string,
  access: SocketAccess,
  logger: Logger,
  serve: (socket: Socket, peer: UnixPeer) => void,
): Promise<Listener> {
  const native = tryNativeSyscalls();
  if (typeof native?.peerCred !== 'function') {
    throw new InvalidArgumentError('serving on a unix socket needs the native addon (SO_PEERCRED), which is not built');
  }
  const group = access.group;
  try {
    const dir = dirname(path);
    if (!(await lstat(dir).catch(() => undefined))) {
      // Missing ancestors as mkdir -p makes them; the socket's own directory is the gate.
      await mkdir(dirname(dir), { recursive: true, mode: 0o755 });
      await mkdir(dir, { mode: 0o700 });
      if (group !== undefined) await chown(dir, -1, group);
      await chmod(dir, group !== undefined ? 0o750 : 0o700);
    }
    const existing = await lstat(path).catch((err: unknown) => (errnoCode(err) === 'ENOENT' ? undefined : Promise.reject(err)));
    if (existing && !existing.isSocket()) {
      throw new InvalidArgumentError(`${path} exists and is not a socket; refusing to replace it`);
    }
    if (existing) {
      await removeStaleSocket(path);
      if (await lstat(path).catch(() => undefined)) throw new InvalidArgumentError(`${path} is in use by another server`);
    }
  } catch (err) {
    throw asImageTsError(err);
  }
  const allowed = access.allowedUids ? new Set(access.allowedUids) : undefined;
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
    let peer: UnixPeer;
    try {
      const [pid, uid, gid] = native.peerCred(fd ?? -1);
      peer = { pid, uid, gid };
    } catch {
      socket.destroy(); // a peer we cannot name is not served
      return;
    }
    if (allowed && !allowed.has(peer.uid)) {
      logger.log('warn', 'rpc.refused', { socket: path, peer_uid: peer.uid, peer_pid: peer.pid, reason: 'uid not in serve.allowed_uids' });
      socket.destroy();
      return;
    }
    serve(socket, peer);
  });
  await bindPrivately(server, path);
  try {
    if (group !== undefined) await chown(path, -1, group);
    await chmod(path, group !== undefined ? 0o660 : 0o600);
  } catch (err) {
    server.close();
    await unlink(path).catch(() => undefined);
    throw asImageTsError(err);
  }
  return {
    path,
    // Whoever served a connection has had its chance to end it; what is left goes now, or close would wait on it.
    close: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const s of sockets) s.destroy();
      await closed;
      await unlink(path).catch(() => undefined);
    },
  };
}

/** listen(2) under umask 0177: the socket file is born 0600. */
async function bindPrivately(server: Server, path: string): Promise<void> {
  const old = process.umask(0o177);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    throw asImageTsError(err);
  } finally {
    process.umask(old);
  }
}
