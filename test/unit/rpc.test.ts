import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { join } from 'node:path';
import { createConnection } from 'node:net';
import { describe, it } from 'node:test';
import { AttestationFailedError, ImageTsError } from '../../src/domain/errors.js';
import { AttestationAgentClient } from '../../src/adapters/outbound/keys/attestation/aa-client.js';
import { createGrpcClient, grpcTarget, grpcUnaryCall, listenGrpc } from '../../src/adapters/outbound/rpc/grpc.js';
import { ProtoReader, ProtoWriter, ProtobufError, decodeStatus, encodeStatus } from '../../src/adapters/outbound/rpc/protobuf.js';
import { RpcError, RpcStatus, type RpcHandler, type RpcServices } from '../../src/adapters/outbound/rpc/rpc.js';
import { TTRPC_MAX_MESSAGE, TtrpcClient, TtrpcServer } from '../../src/adapters/outbound/rpc/ttrpc.js';
import { deadTarget, socketDir, startAttestationAgentService } from '../harness/key-services.js';
import { MemoryAttestationAgent } from '../mocks/memory-attestation-agent.js';

const hex = (b: Buffer): string => b.toString('hex');
const status = (s: number) => (e: unknown): boolean => {
  assert.ok(e instanceof RpcError, String(e));
  assert.equal(e.status, s, `${e.status} ${e.message}`);
  return true;
};

describe('protobuf codec', () => {
  it('writes the textbook encodings', () => {
    assert.equal(hex(new ProtoWriter().uint64(1, 150).finish()), '089601');
    assert.equal(hex(new ProtoWriter().string(2, 'testing').finish()), '120774657374696e67');
    assert.equal(hex(new ProtoWriter().int64(1, -1).finish()), '08ffffffffffffffffff01');
    assert.equal(hex(new ProtoWriter().int32(1, -2).finish()), '08feffffffffffffffff01');
    assert.equal(hex(new ProtoWriter().bool(3, true).finish()), '1801');
  });

  it('leaves out proto3 defaults unless the field is marked present', () => {
    const w = new ProtoWriter().string(1, '').bytes(2, Buffer.alloc(0)).uint64(3, 0).int64(4, 0n).bool(5, false).enum(6, 0);
    assert.equal(w.finish().length, 0);
    const r = ProtoReader.decode(new ProtoWriter().uint64(4, 0, true).string(1, '', true).finish());
    assert.ok(r.has(4) && r.has(1));
    assert.equal(r.uint64(4), 0n);
    assert.ok(!r.has(2));
  });

  it('round-trips every kind of field it supports', () => {
    const blob = randomBytes(300);
    const nested = new ProtoWriter().string(1, 'inner').int32(2, -7);
    const buf = new ProtoWriter()
      .string(1, 'héllo ✓')
      .bytes(2, blob)
      .uint64(3, (1n << 64n) - 1n)
      .int64(4, -(1n << 63n))
      .int32(5, -123456)
      .enum(6, 2)
      .bool(7, true)
      .message(8, nested)
      .message(9, new ProtoWriter().string(1, 'a'))
      .message(9, new ProtoWriter().string(1, 'b'))
      .map(10, [['k1', 'v1'], ['k2', '']])
      .string(11, 'x')
      .string(11, 'y')
      .finish();
    const r = ProtoReader.decode(buf);
    assert.equal(r.string(1), 'héllo ✓');
    assert.deepEqual(r.bytes(2), blob);
    assert.equal(r.uint64(3), (1n << 64n) - 1n);
    assert.equal(r.int64(4), -(1n << 63n));
    assert.equal(r.int32(5), -123456);
    assert.equal(r.enum(6), 2);
    assert.equal(r.bool(7), true);
    assert.equal(r.message(8)?.string(1), 'inner');
    assert.equal(r.message(8)?.int32(2), -7);
    assert.deepEqual(r.messages(9).map((m) => m.string(1)), ['a', 'b']);
    assert.deepEqual([...r.map(10)], [['k1', 'v1'], ['k2', '']]);
    assert.equal(r.string(11), 'y', 'the last scalar wins');
    assert.deepEqual(r.repeatedStrings(11), ['x', 'y']);
    assert.equal(r.string(99), '');
    assert.equal(r.uint64(98), 0n);
    assert.equal(r.message(97), undefined);
  });

  it('skips unknown fields of every wire type', () => {
    const known = new ProtoWriter().string(1, 'kept').finish();
    const unknown = Buffer.from([
      0x10, 0x96, 0x01, // field 2 varint
      0x19, 1, 2, 3, 4, 5, 6, 7, 8, // field 3 fixed64
      0x25, 1, 2, 3, 4, // field 4 fixed32
      0x2a, 0x02, 0x61, 0x62, // field 5 bytes
    ]);
    assert.equal(ProtoReader.decode(Buffer.concat([unknown, known])).string(1), 'kept');
  });

  it('round-trips google.rpc.Status with details', () => {
    const s = { code: 13, message: '[CDH] [ERROR]: no', details: [{ typeUrl: 'type.googleapis.com/x.Y', value: Buffer.from([1, 2]) }] };
    assert.deepEqual(decodeStatus(encodeStatus(s)), s);
    assert.deepEqual(decodeStatus(Buffer.alloc(0)), { code: 0, message: '', details: [] });
  });

  const malformed: Array<[string, number[], (r: ProtoReader) => unknown]> = [
    ['a truncated varint', [0x08, 0x96], (r) => r],
    ['a length past the end', [0x0a, 0x05, 0x61], (r) => r],
    ['a varint over 64 bits', [0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02], (r) => r],
    ['an 11-byte varint', [0x08, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01], (r) => r],
    ['a group', [0x0b, 0x0c], (r) => r],
    ['wire type 7', [0x0f], (r) => r],
    ['field number 0', [0x00, 0x01], (r) => r],
    ['a truncated fixed64', [0x09, 1, 2, 3], (r) => r],
    ['a string read from a varint field', [0x08, 0x01], (r) => r.string(1)],
    ['invalid UTF-8 in a string', [0x0a, 0x02, 0xc3, 0x28], (r) => r.string(1)],
    ['a bad nested message', [0x0a, 0x02, 0x08, 0x80], (r) => r.message(1)],
  ];
  for (const [what, bytes, read] of malformed) {
    it(`refuses ${what} with a typed error`, () => {
      assert.throws(() => read(ProtoReader.decode(Buffer.from(bytes))), (e: unknown) => {
        assert.ok(e instanceof ProtobufError, String(e));
        assert.equal(e.code, 'INVALID_ARGUMENT');
        return true;
      });
    });
  }

  it('refuses values the type cannot hold', () => {
    assert.throws(() => new ProtoWriter().uint64(1, -1), ImageTsError);
    assert.throws(() => new ProtoWriter().int32(1, 2 ** 31), ImageTsError);
    assert.throws(() => new ProtoWriter().uint64(1, 2 ** 60), ImageTsError);
    assert.throws(() => new ProtoWriter().string(0, 'x'), ImageTsError);
  });
});

const SERVICE = 'test.Echo';

async function ttrpcServer(handlers: Record<string, RpcHandler>): Promise<{ server: TtrpcServer; target: string; stop: () => Promise<void> }> {
  const { dir, cleanup } = await socketDir();
  const target = `unix://${join(dir, 't.sock')}`;
  const server = new TtrpcServer().registerServices({ [SERVICE]: handlers });
  await server.listen(target);
  return {
    server,
    target,
    stop: async () => {
      await server.close();
      await cleanup();
    },
  };
}

function rawFrame(streamId: number, type: number, body: Buffer, declaredLength = body.length): Buffer {
  const h = Buffer.alloc(10);
  h.writeUInt32BE(declaredLength, 0);
  h.writeUInt32BE(streamId, 4);
  h.writeUInt8(type, 8);
  return Buffer.concat([h, body]);
}

const echo: RpcHandler = async (payload, ctx) => Buffer.concat([Buffer.from(ctx.metadata.get('prefix') ?? ''), payload]);

describe('ttrpc', () => {
  it('calls a method and carries metadata', async () => {
    const s = await ttrpcServer({ Echo: echo });
    const client = new TtrpcClient(s.target);
    try {
      assert.deepEqual(await client.call(SERVICE, 'Echo', Buffer.from('hi'), { metadata: { prefix: '>' } }), Buffer.from('>hi'));
      assert.deepEqual(await client.call(SERVICE, 'Echo', Buffer.alloc(0)), Buffer.alloc(0));
    } finally {
      client.close();
      await s.stop();
    }
  });

  it('multiplexes concurrent calls on one connection and matches out-of-order answers', async () => {
    const n = 20;
    const waiting: Array<() => void> = [];
    const s = await ttrpcServer({
      Echo: async (payload) => {
        // nobody answers until every call has arrived, then in reverse order
        await new Promise<void>((resolve) => {
          waiting.push(resolve);
          if (waiting.length === n) for (const w of [...waiting].reverse()) w();
        });
        return payload;
      },
    });
    const client = new TtrpcClient(s.target);
    try {
      const payloads = Array.from({ length: n }, (_, i) => Buffer.from(`call ${i} ${'x'.repeat(i * 1000)}`));
      const got = await Promise.all(payloads.map((p) => client.call(SERVICE, 'Echo', p)));
      got.forEach((g, i) => assert.deepEqual(g, payloads[i]));
      assert.equal(s.server.connectionsAccepted, 1);
    } finally {
      client.close();
      await s.stop();
    }
  });

  it('answers an unknown service or method with UNIMPLEMENTED', async () => {
    const s = await ttrpcServer({ Echo: echo });
    const client = new TtrpcClient(s.target);
    try {
      await assert.rejects(client.call(SERVICE, 'Nope', Buffer.alloc(0)), status(RpcStatus.UNIMPLEMENTED));
      await assert.rejects(client.call('other.Service', 'Echo', Buffer.alloc(0)), status(RpcStatus.UNIMPLEMENTED));
    } finally {
      client.close();
      await s.stop();
    }
  });

  it('turns handler failures into statuses; only RpcError picks the code, only typed errors show their message', async () => {
    const s = await ttrpcServer({
      NotFound: async () => {
        throw new RpcError(RpcStatus.NOT_FOUND, 'no such thing');
      },
      Typed: async () => {
        throw new ImageTsError('KEY_BROKER_DENIED', 'resource kbs:///a/b/c is not released');
      },
      Plain: async () => {
        throw new Error('secret 0123456789');
      },
      Sync: (() => {
        throw new Error('thrown before any promise');
      }) as RpcHandler,
    });
    const client = new TtrpcClient(s.target);
    try {
      await assert.rejects(client.call(SERVICE, 'NotFound', Buffer.alloc(0)), (e: unknown) => status(RpcStatus.NOT_FOUND)(e) && /no such thing/.test(String(e)));
      await assert.rejects(client.call(SERVICE, 'Typed', Buffer.alloc(0)), (e: unknown) => status(RpcStatus.INTERNAL)(e) && /kbs:\/\/\/a\/b\/c/.test(String(e)));
      await assert.rejects(client.call(SERVICE, 'Plain', Buffer.alloc(0)), (e: unknown) => {
        status(RpcStatus.INTERNAL)(e);
        assert.doesNotMatch((e as Error).message, /secret/);
        return true;
      });
      await assert.rejects(client.call(SERVICE, 'Sync', Buffer.alloc(0)), status(RpcStatus.INTERNAL));
    } finally {
      client.close();
      await s.stop();
    }
  });

  it('refuses a request over 4 MiB without sending it, and the connection stays usable', async () => {
    let calls = 0;
    const s = await ttrpcServer({
      Echo: async (p) => {
        calls++;
        return p;
      },
    });
    const client = new TtrpcClient(s.target);
    try {
      await assert.rejects(client.call(SERVICE, 'Echo', Buffer.alloc(TTRPC_MAX_MESSAGE)), status(RpcStatus.RESOURCE_EXHAUSTED));
      assert.equal(calls, 0);
      const big = randomBytes(TTRPC_MAX_MESSAGE - 1024);
      assert.deepEqual(await client.call(SERVICE, 'Echo', big), big);
    } finally {
      client.close();
      await s.stop();
    }
  });

  it('server: skips an oversized frame without buffering it, answers RESOURCE_EXHAUSTED, and serves the next one', async () => {
    const s = await ttrpcServer({ Echo: echo });
    const sock = createConnection(s.target.slice('unix://'.length));
    try {
      await once(sock, 'connect');
      const oversize = TTRPC_MAX_MESSAGE + 1;
      sock.write(rawFrame(1, 1, Buffer.alloc(0), oversize));
      for (let sent = 0; sent < oversize; sent += 64 * 1024) sock.write(Buffer.alloc(Math.min(64 * 1024, oversize - sent)));
      const request = new ProtoWriter().string(1, SERVICE).string(2, 'Echo').bytes(3, Buffer.from('after')).finish();
      sock.write(rawFrame(3, 1, request));
      const frames: Array<{ id: number; body: Buffer }> = [];
      let buf = Buffer.alloc(0);
      for await (const chunk of sock) {
        buf = Buffer.concat([buf, chunk as Buffer]);
        while (buf.length >= 10 && buf.length >= 10 + buf.readUInt32BE(0)) {
          const len = buf.readUInt32BE(0);
          assert.equal(buf.readUInt8(8), 2);
          frames.push({ id: buf.readUInt32BE(4), body: buf.subarray(10, 10 + len) });
          buf = buf.subarray(10 + len);
        }
        if (frames.length === 2) break;
      }
      assert.deepEqual(frames.map((f) => f.id), [1, 3]);
      const first = ProtoReader.decode(frames[0]!.body);
      assert.equal(decodeStatus(first.bytes(1)).code, RpcStatus.RESOURCE_EXHAUSTED);
      const second = ProtoReader.decode(frames[1]!.body);
      assert.ok(!second.has(1));
      assert.equal(second.bytes(2).toString(), 'after');
    } finally {
      sock.destroy();
      await s.stop();
    }
  });

  it('answers RESOURCE_EXHAUSTED instead of a response over 4 MiB', async () => {
    const s = await ttrpcServer({ Big: async () => Buffer.alloc(TTRPC_MAX_MESSAGE + 1) });
    const client = new TtrpcClient(s.target);
    try {
      await assert.rejects(client.call(SERVICE, 'Big', Buffer.alloc(0)), status(RpcStatus.RESOURCE_EXHAUSTED));
    } finally {
      client.close();
      await s.stop();
    }
  });

  it('times a call out with DEADLINE_EXCEEDED, and the handler learns it through its signal', async () => {
    let handlerAborted: Promise<unknown> | undefined;
    const s = await ttrpcServer({
      Hang: (_p, ctx) => {
        handlerAborted = once(ctx.signal, 'abort');
        return new Promise<Buffer>(() => undefined);
      },
      Echo: echo,
    });
    const client = new TtrpcClient(s.target);
    try {
      await assert.rejects(client.call(SERVICE, 'Hang', Buffer.alloc(0), { timeoutMs: 150 }), status(RpcStatus.DEADLINE_EXCEEDED));
      assert.ok(handlerAborted);
      await handlerAborted;
      assert.deepEqual(await client.call(SERVICE, 'Echo', Buffer.from('still fine')), Buffer.from('still fine'));
    } finally {
      client.close();
      await s.stop();
    }
  });

  it('stops a call when the signal is aborted', async () => {
    const s = await ttrpcServer({ Hang: () => new Promise<Buffer>(() => undefined) });
    const client = new TtrpcClient(s.target);
    try {
      const c = new AbortController();
      setTimeout(() => c.abort(new ImageTsError('INTERNAL', 'interrupted')), 50);
      await assert.rejects(client.call(SERVICE, 'Hang', Buffer.alloc(0), { signal: c.signal }), /interrupted/);
      await assert.rejects(client.call(SERVICE, 'Hang', Buffer.alloc(0), { signal: c.signal }), /interrupted/);
    } finally {
      client.close();
      await s.stop();
    }
  });

  it('rejects calls in flight with UNAVAILABLE when the server goes away', async () => {
    let started!: () => void;
    const inHandler = new Promise<void>((resolve) => (started = resolve));
    const s = await ttrpcServer({
      Hang: () => {
        started();
        return new Promise<Buffer>(() => undefined);
      },
    });
    const client = new TtrpcClient(s.target);
    try {
      const pending = client.call(SERVICE, 'Hang', Buffer.alloc(0));
      await inHandler;
      await s.server.close();
      await assert.rejects(pending, status(RpcStatus.UNAVAILABLE));
    } finally {
      client.close();
      await s.stop();
    }
  });

  it('reports a socket where nothing listens as UNAVAILABLE, naming the path', async () => {
    const dead = await deadTarget();
    const client = new TtrpcClient(dead.target);
    try {
      await assert.rejects(client.call(SERVICE, 'Echo', Buffer.alloc(0)), (e: unknown) => {
        status(RpcStatus.UNAVAILABLE)(e);
        assert.match((e as Error).message, /nobody\.sock/);
        return true;
      });
    } finally {
      client.close();
      await dead.cleanup();
    }
  });

  it('reconnects on the next call after the server restarts', async () => {
    const s = await ttrpcServer({ Echo: echo });
    const client = new TtrpcClient(s.target);
    const again = new TtrpcServer().register(SERVICE, 'Echo', async () => Buffer.from('second server'));
    try {
      assert.deepEqual(await client.call(SERVICE, 'Echo', Buffer.from('one')), Buffer.from('one'));
      await s.server.close();
      await assert.rejects(client.call(SERVICE, 'Echo', Buffer.from('down')), status(RpcStatus.UNAVAILABLE));
      await again.listen(s.target);
      assert.deepEqual(await client.call(SERVICE, 'Echo', Buffer.from('two')), Buffer.from('second server'));
      assert.equal(again.connectionsAccepted, 1);
    } finally {
      client.close();
      await again.close();
      await s.stop();
    }
  });

  it('refuses a target that is not a unix socket', () => {
    assert.throws(() => new TtrpcClient('tcp://127.0.0.1:1'), status(RpcStatus.INVALID_ARGUMENT));
  });
});

describe('gRPC helpers', () => {
  const services: RpcServices = {
    [SERVICE]: {
      Echo: echo,
      Fail: async () => {
        throw new RpcError(RpcStatus.PERMISSION_DENIED, 'not for you');
      },
      Plain: async () => {
        throw new Error('secret');
      },
      Hang: () => new Promise<Buffer>(() => undefined),
    },
  };

  it('normalises targets', () => {
    assert.equal(grpcTarget('unix:///run/x.sock'), 'unix:///run/x.sock');
    assert.equal(grpcTarget('/run/x.sock'), 'unix:///run/x.sock');
    assert.equal(grpcTarget('127.0.0.1:50000'), '127.0.0.1:50000');
    assert.equal(grpcTarget('http://127.0.0.1:50000'), '127.0.0.1:50000');
    assert.equal(grpcTarget('tcp://127.0.0.1:50000/'), '127.0.0.1:50000');
    assert.equal(grpcTarget('https://kms.example:443'), 'kms.example:443');
  });

  it('makes unary calls with raw bytes over a unix socket, and maps statuses', async () => {
    const { dir, cleanup } = await socketDir();
    const handle = await listenGrpc(`unix://${join(dir, 'g.sock')}`, services);
    const client = await createGrpcClient(handle.target);
    try {
      const blob = randomBytes(100_000);
      assert.deepEqual(await grpcUnaryCall(client, `/${SERVICE}/Echo`, blob), blob);
      assert.deepEqual(await grpcUnaryCall(client, `/${SERVICE}/Echo`, Buffer.from('x'), { metadata: { prefix: 'p:' } }), Buffer.from('p:x'));
      await assert.rejects(grpcUnaryCall(client, `/${SERVICE}/Fail`, Buffer.alloc(0)), (e: unknown) => status(RpcStatus.PERMISSION_DENIED)(e) && /not for you/.test(String(e)));
      await assert.rejects(grpcUnaryCall(client, `/${SERVICE}/Plain`, Buffer.alloc(0)), (e: unknown) => {
        status(RpcStatus.INTERNAL)(e);
        assert.doesNotMatch((e as Error).message, /secret/);
        return true;
      });
      await assert.rejects(grpcUnaryCall(client, `/${SERVICE}/Nope`, Buffer.alloc(0)), status(RpcStatus.UNIMPLEMENTED));
      await assert.rejects(grpcUnaryCall(client, `/${SERVICE}/Hang`, Buffer.alloc(0), { timeoutMs: 150 }), status(RpcStatus.DEADLINE_EXCEEDED));
      const c = new AbortController();
      setTimeout(() => c.abort(new ImageTsError('INTERNAL', 'interrupted')), 50);
      await assert.rejects(grpcUnaryCall(client, `/${SERVICE}/Hang`, Buffer.alloc(0), { signal: c.signal }), /interrupted/);
    } finally {
      client.close();
      await handle.close(100);
      await cleanup();
    }
  });

  it('reports a socket where nothing listens as UNAVAILABLE', async () => {
    const dead = await deadTarget();
    const client = await createGrpcClient(dead.target);
    try {
      await assert.rejects(grpcUnaryCall(client, `/${SERVICE}/Echo`, Buffer.alloc(0), { timeoutMs: 5000 }), status(RpcStatus.UNAVAILABLE));
    } finally {
      client.close();
      await dead.cleanup();
    }
  });
});

for (const transport of ['grpc', 'ttrpc'] as const) {
  describe(`attestation agent client over ${transport}`, () => {
    const connect = (target: string): AttestationAgentClient =>
      transport === 'grpc' ? AttestationAgentClient.overGrpc(target) : AttestationAgentClient.overTtrpc(target);

    it('gets the TEE type, evidence and tokens, and extends measurements', async () => {
      const aa = new MemoryAttestationAgent();
      const service = await startAttestationAgentService(transport, aa);
      const client = connect(service.target);
      try {
        assert.equal(await client.getTeeType(), 'sample');
        const runtimeData = randomBytes(48);
        const evidence = JSON.parse((await client.getEvidence(runtimeData)).toString()) as { report_data: string };
        assert.equal(evidence.report_data, runtimeData.toString('base64'));
        assert.deepEqual(JSON.parse((await client.getToken('kbs')).toString()), { token: 'mock-kbs' });
        await client.extendRuntimeMeasurement({ domain: 'image-rs', operation: 'PullImage', content: 'docker.io/library/busybox@sha256:x', registerIndex: 0 });
        await client.extendRuntimeMeasurement({ domain: 'image-rs', operation: 'PullImage', content: 'y' });
        assert.deepEqual(aa.measurements, [
          { domain: 'image-rs', operation: 'PullImage', content: 'docker.io/library/busybox@sha256:x', registerIndex: 0 },
          { domain: 'image-rs', operation: 'PullImage', content: 'y', registerIndex: undefined },
        ]);
      } finally {
        client.close();
        await service.stop();
      }
    });

    it('reports a failing agent as ATTESTATION_FAILED with its message', async () => {
      const aa = new MemoryAttestationAgent();
      aa.fail = new AttestationFailedError('no TEE here');
      const service = await startAttestationAgentService(transport, aa);
      const client = connect(service.target);
      try {
        await assert.rejects(client.getEvidence(Buffer.from('x')), (e: unknown) => {
          assert.ok(e instanceof ImageTsError && e.code === 'ATTESTATION_FAILED', String(e));
          assert.match(e.message, /no TEE here/);
          return true;
        });
      } finally {
        client.close();
        await service.stop();
      }
    });

    it('reports a dead socket as ATTESTATION_FAILED, saying it is unreachable', async () => {
      const dead = await deadTarget();
      const client = connect(dead.target);
      try {
        await assert.rejects(client.getToken('kbs'), (e: unknown) => {
          assert.ok(e instanceof ImageTsError && e.code === 'ATTESTATION_FAILED', String(e));
          assert.match(e.message, /unreachable/);
          return true;
        });
      } finally {
        client.close();
        await dead.cleanup();
      }
    });
  });
}
