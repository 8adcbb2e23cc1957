import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { CocoKeyProvider } from '../src/domain/encryption/coco-key-provider.js';
import { EMPTY_DECRYPT_CONFIG } from '../src/domain/encryption/decrypt-config.js';
import { keyUnwrapInput, parseKeyUnwrapOutput } from '../src/domain/encryption/key-provider-protocol.js';
import { ImageTsError } from '../src/domain/errors.js';
import {
  CmdKeyProvider,
  GrpcKeyProvider,
  RpcKeyProvider,
  TtrpcKeyProvider,
  loadKeyProviderConfig,
  stderrSummary,
} from '../src/adapters/outbound/keys/providers/key-providers.js';
import type { KeyProvider } from '../src/ports/keys/key-provider.js';
import { deadTarget, startKeyProviderService, type ServiceTransport } from '../test/harness/key-services.js';
import { MemoryKeyBroker } from '../test/mocks/memory-key-broker.js';
import { keyProviderContract, samplePrivOpts, wrapPrivOpts, type HeldKey } from './key-provider.contract.js';

const FIXTURE = fileURLToPath(new URL('../test/fixtures/cmd-key-provider.mjs', import.meta.url));
const NAME = 'attestation-agent';

const brokerHolding = (held: HeldKey): MemoryKeyBroker =>
  new MemoryKeyBroker(new Map([[new URL(held.kid).pathname.slice(1), held.kek]]));

const cmdProvider = (held: HeldKey, extra: Record<string, string> = {}, timeoutMs?: number): CmdKeyProvider =>
  new CmdKeyProvider(NAME, process.execPath, [FIXTURE], {
    env: { CMD_KP_KEK_B64: held.kek.toString('base64'), CMD_KP_KID: held.kid, ...extra },
    timeoutMs,
  });

const closeAll = (...providers: KeyProvider[]): void => {
  for (const p of providers) if (p instanceof RpcKeyProvider) p.close();
};

/** Providers built from an ocicrypt config text, as the CLI will build them. */
function fromConfig(entry: Record<string, unknown>): KeyProvider {
  const provider = loadKeyProviderConfig(JSON.stringify({ 'key-providers': { [NAME]: entry } })).get(NAME);
  assert.ok(provider);
  return provider;
}

async function freeClosedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  assert.ok(address && typeof address === 'object');
  return address.port;
}

keyProviderContract('cmd, base64 optsdata (Go style)', async (held) => ({
  provider: cmdProvider(held),
  deadProvider: new CmdKeyProvider(NAME, '/nonexistent/image-ts/key-provider'),
  teardown: async () => undefined,
}));

keyProviderContract('cmd, integer-array optsdata (Rust style)', async (held) => ({
  provider: cmdProvider(held, { CMD_KP_ARRAY: '1' }),
  deadProvider: new CmdKeyProvider(NAME, '/nonexistent/image-ts/key-provider'),
  teardown: async () => undefined,
}));

for (const transport of ['grpc', 'ttrpc'] as const satisfies readonly ServiceTransport[]) {
  keyProviderContract(`${transport} over a unix socket`, async (held) => {
    const service = await startKeyProviderService(transport, brokerHolding(held));
    const dead = await deadTarget();
    const provider = fromConfig({ [transport]: service.target });
    const deadProvider = fromConfig({ [transport]: dead.target });
    return {
      provider,
      deadProvider,
      teardown: async () => {
        closeAll(provider, deadProvider);
        await service.stop();
        await dead.cleanup();
      },
    };
  });
}

keyProviderContract('grpc over TCP, http:// target', async (held) => {
  const service = await startKeyProviderService('grpc', brokerHolding(held), { tcp: true });
  const provider = fromConfig({ grpc: `http://${service.target}` });
  const deadProvider = fromConfig({ grpc: `127.0.0.1:${await freeClosedPort()}` });
  return {
    provider,
    deadProvider,
    teardown: async () => {
      closeAll(provider, deadProvider);
      await service.stop();
    },
  };
});

keyProviderContract('in-process CocoKeyProvider', async (held) => {
  const down = new MemoryKeyBroker();
  down.down = true;
  return { provider: new CocoKeyProvider(brokerHolding(held)), deadProvider: new CocoKeyProvider(down), teardown: async () => undefined };
});

// The §4.4 known answer (sample KEK d99b7705…) is left to the lead: the spec
// elides the middle of the sample packet, so it cannot be rebuilt from it.

const code = (c: string) => (e: unknown): boolean => e instanceof ImageTsError && e.code === c;

describe('cmd key provider', () => {
  const held: HeldKey = { kid: 'kbs:///default/key/1', kek: randomBytes(32) };
  const item = wrapPrivOpts(held.kid, held.kek, samplePrivOpts());

  it('turns a non-zero exit into KEY_BROKER_DENIED with the first stderr line only, never the input', async () => {
    const p = cmdProvider(held, { CMD_KP_FAIL: '1' });
    await assert.rejects(p.unwrapKey(keyUnwrapInput(item, EMPTY_DECRYPT_CONFIG)), (e: unknown) => {
      assert.ok(code('KEY_BROKER_DENIED')(e), String(e));
      const m = (e as Error).message;
      assert.match(m, /status 3/);
      assert.match(m, /refusing as CMD_KP_FAIL asks/);
      assert.doesNotMatch(m, /second line/);
      assert.ok(!m.includes(item.toString('base64').slice(0, 40)));
      return true;
    });
  });

  it('kills a provider that does not answer in time and reports KEY_BROKER_UNAVAILABLE', async () => {
    const p = cmdProvider(held, { CMD_KP_HANG: '1' }, 400);
    const started = Date.now();
    await assert.rejects(p.unwrapKey(keyUnwrapInput(item, EMPTY_DECRYPT_CONFIG)), (e: unknown) => {
      assert.ok(code('KEY_BROKER_UNAVAILABLE')(e), String(e));
      assert.match((e as Error).message, /within 400 ms/);
      return true;
    });
    assert.ok(Date.now() - started < 5000);
  });

  it('stops a running provider when the signal is aborted', async () => {
    const p = cmdProvider(held, { CMD_KP_HANG: '1' });
    const c = new AbortController();
    setTimeout(() => c.abort(new ImageTsError('INTERNAL', 'interrupted')), 200);
    await assert.rejects(p.unwrapKey(keyUnwrapInput(item, EMPTY_DECRYPT_CONFIG), c.signal), /interrupted/);
  });

  it('reports a command that cannot be started as KEY_BROKER_UNAVAILABLE', async () => {
    const p = new CmdKeyProvider(NAME, '/nonexistent/image-ts/kp');
    await assert.rejects(p.unwrapKey(keyUnwrapInput(item, EMPTY_DECRYPT_CONFIG)), (e: unknown) => {
      assert.ok(code('KEY_BROKER_UNAVAILABLE')(e), String(e));
      assert.match((e as Error).message, /ENOENT/);
      return true;
    });
  });

  it('blanks long base64 runs in stderr and keeps one short line', () => {
    const secret = randomBytes(48).toString('base64');
    const s = stderrSummary(`\n  error: bad key ${secret} here\nmore`);
    assert.equal(s, 'error: bad key … here');
    assert.ok(stderrSummary('x'.repeat(1000)).length <= 201);
  });

  it('takes the output as is; the protocol layer reads both optsdata forms', async () => {
    const privopts = samplePrivOpts();
    const out = await cmdProvider(held, { CMD_KP_ARRAY: '1' }).unwrapKey(keyUnwrapInput(wrapPrivOpts(held.kid, held.kek, privopts), EMPTY_DECRYPT_CONFIG));
    assert.match(out.toString(), /^\{"keyunwrapresults":\{"optsdata":\[\d+,/);
    assert.deepEqual(parseKeyUnwrapOutput(out, NAME), privopts);
  });
});

describe('ocicrypt key-provider config', () => {
  const load = (value: unknown, native?: (kind: string, name: string) => KeyProvider | undefined): Map<string, KeyProvider> =>
    loadKeyProviderConfig(typeof value === 'string' ? value : JSON.stringify(value), { native });

  it('builds one provider per entry, by transport', () => {
    const providers = load({
      'key-providers': {
        a: { cmd: { path: '/usr/bin/kp', args: ['--x'] } },
        b: { grpc: '127.0.0.1:50000' },
        c: { ttrpc: 'unix:///run/confidential-containers/cdh.sock' },
        d: { grpc: 'kms.example:443', 'grpc-tls': { 'root-ca-file': '/ca.pem', 'cert-file': '/c.pem', 'key-file': '/k.pem', 'server-name': 'kms.example' } },
      },
    });
    assert.deepEqual([...providers.keys()], ['a', 'b', 'c', 'd']);
    const a = providers.get('a');
    assert.ok(a instanceof CmdKeyProvider);
    assert.equal(a.path, '/usr/bin/kp');
    assert.deepEqual(a.args, ['--x']);
    assert.ok(providers.get('b') instanceof GrpcKeyProvider);
    assert.ok(providers.get('c') instanceof TtrpcKeyProvider);
    assert.ok(providers.get('d') instanceof GrpcKeyProvider);
    for (const p of providers.values()) assert.ok(['a', 'b', 'c', 'd'].includes(p.name));
    closeAll(...providers.values());
  });

  it('prefers cmd over grpc over ttrpc over native', () => {
    const native = new CocoKeyProvider(new MemoryKeyBroker(), 'n');
    const seen: string[] = [];
    const nativeOf = (kind: string, name: string): KeyProvider | undefined => {
      seen.push(`${kind}:${name}`);
      return kind === 'attestation-agent' ? native : undefined;
    };
    const all = { cmd: { path: '/bin/kp' }, grpc: 'h:1', ttrpc: 'unix:///x.sock', native: 'attestation-agent' };
    const providers = load({
      'key-providers': {
        one: all,
        two: { ...all, cmd: undefined },
        three: { ttrpc: 'unix:///x.sock', native: 'attestation-agent' },
        four: { native: 'attestation-agent' },
      },
    }, nativeOf);
    assert.ok(providers.get('one') instanceof CmdKeyProvider);
    assert.ok(providers.get('two') instanceof GrpcKeyProvider);
    assert.ok(providers.get('three') instanceof TtrpcKeyProvider);
    assert.equal(providers.get('four'), native);
    assert.deepEqual(seen, ['attestation-agent:four']);
    closeAll(...providers.values());
  });

  it('has no providers for an empty object', () => {
    assert.equal(load({}).size, 0);
    assert.equal(load({ 'key-providers': {} }).size, 0);
  });

  const invalid: Array<[string, unknown, RegExp]> = [
    ['not JSON', '{"key-providers":', /not JSON/],
    ['not an object', '[]', /JSON object/],
    ['key-providers not an object', { 'key-providers': [] }, /"key-providers" must be an object/],
    ['entry not an object', { 'key-providers': { x: 'grpc' } }, /"x" must be an object/],
    ['no transport', { 'key-providers': { x: { path: '/bin/kp' } } }, /none of "cmd", "grpc", "ttrpc", "native"/],
    ['cmd without path', { 'key-providers': { x: { cmd: { args: [] } } } }, /cmd\.path/],
    ['cmd args not strings', { 'key-providers': { x: { cmd: { path: '/bin/kp', args: [1] } } } }, /cmd\.args/],
    ['grpc not a string', { 'key-providers': { x: { grpc: 50000 } } }, /"grpc" must be a non-empty string/],
    ['ttrpc over tcp', { 'key-providers': { x: { ttrpc: 'tcp://127.0.0.1:1' } } }, /unix socket/],
    ['grpc-tls with a cert and no key', { 'key-providers': { x: { grpc: 'h:1', 'grpc-tls': { 'cert-file': '/c.pem' } } } }, /both "cert-file" and "key-file"/],
    ['unknown native', { 'key-providers': { x: { native: 'nope' } } }, /native provider "nope" is not available/],
  ];
  for (const [what, text, why] of invalid) {
    it(`refuses ${what} with CONFIG_FILE_INVALID`, () => {
      assert.throws(() => load(text, () => undefined), (e: unknown) => {
        assert.ok(code('CONFIG_FILE_INVALID')(e), String(e));
        assert.match((e as Error).message, why);
        assert.doesNotMatch((e as Error).message, /\n/);
        return true;
      });
    });
  }

  it('reports an unreadable grpc-tls file as CONFIG_FILE_INVALID when the provider is first used', async () => {
    const p = load({ 'key-providers': { x: { grpc: '127.0.0.1:1', 'grpc-tls': { 'root-ca-file': '/nonexistent/ca.pem' } } } }).get('x');
    assert.ok(p);
    await assert.rejects(p.unwrapKey(Buffer.from('{}')), (e: unknown) => {
      assert.ok(code('CONFIG_FILE_INVALID')(e), String(e));
      assert.match((e as Error).message, /root-ca-file \/nonexistent\/ca\.pem/);
      return true;
    });
    closeAll(p);
  });
});
