/**
 * The ttrpc server as any local client reaches it: raw bytes on its unix
 * socket, split at arbitrary points, cut into frames (FrameReader), decoded
 * as requests (ProtoReader) and dispatched to the real Confidential Data Hub
 * services, whose key-provider method parses key-provider JSON and an
 * AnnotationPacket. The pull and the key broker are stubs.
 *
 * Every response must be a well-formed frame, and no request may end in an
 * unexpected error (INTERNAL in the image-ts code, or the server's bare
 * "internal error"). An exception escaping the server fails the run.
 */
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cdhServices } from '../../src/adapters/inbound/rpc/cdh-services.js';
import { ProtoReader } from '../../src/adapters/outbound/rpc/protobuf.js';
import { TtrpcServer } from '../../src/adapters/outbound/rpc/ttrpc.js';
import type { PullImage } from '../../src/domain/pull/pull-image.js';
import { Finding, splits } from '../lib/verdict.js';

const dir = mkdtempSync(join(tmpdir(), 'image-ts-fuzz-ttrpc-'));
const socket = join(dir, 'cdh.sock');
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

const KEK = Buffer.alloc(32, 7);
const server = new TtrpcServer({ maxInFlightPerConnection: 8 });
server.registerServices(
  cdhServices({
    pull: { execute: async () => ({ manifestDigest: `sha256:${'0'.repeat(64)}` }) } as unknown as Pick<PullImage, 'execute'>,
    broker: { description: 'fuzz', getResource: async () => KEK },
    logger: { log: () => undefined },
  }),
);
const listening = server.listen(socket);

function checkResponses(bytes: Buffer): void {
  let off = 0;
  while (off < bytes.length) {
    if (bytes.length - off < 10) throw new Finding(`a truncated response frame header (${bytes.length - off} bytes)`);
    const length = bytes.readUInt32BE(off);
    const type = bytes[off + 8];
    if (type !== 2) throw new Finding(`a response frame of type ${type}`);
    if (off + 10 + length > bytes.length) throw new Finding('a truncated response frame');
    const body = ProtoReader.decode(bytes.subarray(off + 10, off + 10 + length));
    const status = body.message(1);
    if (status) {
      const message = status.string(2);
      if (message === 'internal error' || message.startsWith('INTERNAL:')) throw new Finding(`a request ended in an unexpected error: ${message}`);
    }
    off += 10 + length;
  }
}

export async function fuzz(data: Buffer): Promise<void> {
  await listening;
  const s = createConnection(socket);
  const received: Buffer[] = [];
  s.on('data', (c: Buffer) => received.push(c));
  await once(s, 'connect');
  for (const piece of splits(data, 700)) s.write(piece);
  s.end();
  await once(s, 'close');
  checkResponses(Buffer.concat(received));
}
