/**
 * The protobuf reader behind every RPC request image-ts serves
 * (ProtoReader.decode and its typed accessors) and google.rpc.Status.
 * Whatever decodes must encode back to a message that decodes the same.
 */
import { decodeStatus, encodeStatus, ProtoReader } from '../../src/adapters/outbound/rpc/protobuf.js';
import { attempt, Finding } from '../lib/verdict.js';

function readAll(r: ProtoReader, depth: number): void {
  for (let field = 1; field <= 6; field++) {
    attempt(() => r.bytes(field));
    attempt(() => r.string(field));
    attempt(() => r.uint64(field));
    attempt(() => r.int64(field));
    attempt(() => r.int32(field));
    attempt(() => r.bool(field));
    attempt(() => r.safeNumber(field));
    attempt(() => r.repeatedStrings(field));
    attempt(() => r.map(field));
    if (depth < 3) for (const m of attempt(() => r.messages(field)) ?? []) readAll(m, depth + 1);
  }
}

export function fuzz(data: Buffer): void {
  const r = attempt(() => ProtoReader.decode(data));
  if (r) readAll(r, 0);
  const status = attempt(() => decodeStatus(data));
  if (!status) return;
  const again = decodeStatus(encodeStatus(status));
  if (again.code !== status.code || again.message !== status.message || again.details?.length !== status.details?.length) {
    throw new Finding(`status does not round-trip: ${JSON.stringify(status)} vs ${JSON.stringify(again)}`);
  }
}
