import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { rpcErrorOf, withDeadline } from '../../src/adapters/inbound/rpc/status.js';
import { RpcStatus, type RpcContext } from '../../src/adapters/outbound/rpc/rpc.js';
import { ImageTsError } from '../../src/domain/errors.js';

const ctx = (signal = new AbortController().signal): RpcContext => ({ signal, metadata: new Map() });

describe('RPC status mapping', () => {
  it('maps codes to statuses and keeps the code at the head of the message', () => {
    const cases: [string, number][] = [
      ['NOT_FOUND', RpcStatus.NOT_FOUND], ['INVALID_REFERENCE', RpcStatus.INVALID_ARGUMENT], ['UNAUTHORIZED', RpcStatus.UNAUTHENTICATED],
      ['POLICY_DENIED', RpcStatus.PERMISSION_DENIED], ['SIGNATURE_INVALID', RpcStatus.PERMISSION_DENIED], ['NETWORK', RpcStatus.UNAVAILABLE],
      ['KEY_BROKER_UNAVAILABLE', RpcStatus.UNAVAILABLE], ['STORE', RpcStatus.INTERNAL], ['LIMIT_EXCEEDED', RpcStatus.RESOURCE_EXHAUSTED],
    ];
    for (const [code, status] of cases) {
      const e = rpcErrorOf(new ImageTsError(code as ImageTsError['code'], 'why\nsecond line'), new AbortController().signal);
      assert.deepEqual([e.status, e.message], [status, `${code}: why second line`], code);
    }
    const aborted = new AbortController();
    aborted.abort(new Error('client went away'));
    assert.equal(rpcErrorOf(new ImageTsError('NETWORK', 'x'), aborted.signal).status, RpcStatus.CANCELLED);
  });

  it('gives every call a deadline when the client set none, reported as DEADLINE_EXCEEDED', async () => {
    let seen: AbortSignal | undefined;
    const services = withDeadline({ s: { m: (_p, c) => new Promise((_r, reject) => {
      seen = c.signal;
      c.signal.addEventListener('abort', () => reject(new ImageTsError('NETWORK', 'stopped')));
    }) } }, 50);
    // AbortSignal.timeout does not hold the event loop; a server's sockets do, this timer here.
    const keepAlive = setTimeout(() => undefined, 5000);
    const started = Date.now();
    const wrapped = await services['s']!['m']!(Buffer.alloc(0), ctx()).then(() => undefined, (e: unknown) => e);
    clearTimeout(keepAlive);
    assert.ok(Date.now() - started < 2000);
    assert.equal(rpcErrorOf(wrapped, seen!).status, RpcStatus.DEADLINE_EXCEEDED);
    assert.equal(rpcErrorOf(wrapped, seen!).message, 'NETWORK: stopped');
  });
});
