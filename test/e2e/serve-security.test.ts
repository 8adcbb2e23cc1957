/**
 * Who may call `image-ts serve`, and where a call may write: socket modes
 * under a careless umask, a group of callers, peer credentials in the log,
 * mutual TLS off loopback, bundle roots and the resource allowlist. Callers
 * run as real unprivileged users the test makes, against a real serve
 * process and a real docker-registry.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, lstatSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { GrpcTransport, type GrpcTlsOptions } from '../../src/adapters/outbound/rpc/grpc.js';
import { ProtoReader, ProtoWriter, singleString } from '../../src/adapters/outbound/rpc/protobuf.js';
import { RpcError, RpcStatus } from '../../src/adapters/outbound/rpc/rpc.js';
import { TtrpcClient } from '../../src/adapters/outbound/rpc/ttrpc.js';
import { freePort, smallImage, startRegistry, type StartedRegistry } from '../harness/registry.js';
import { ROOT } from '../helpers/cli.js';
import { unmountBelow } from '../helpers/mounts.js';

const GROUP = 'imagets-callers';
const MEMBER = 'imagets-member';
const OTHER = 'imagets-other';
const secret = Buffer.from('a resource only the broker holds');

let dir: string;
let registry: StartedRegistry;
let memberUid: number;
let groupGid: number;
const servers: ChildProcess[] = [];

function ensureAccounts(): void {
  if (spawnSync('getent', ['group', GROUP]).status !== 0) execFileSync('groupadd', [GROUP]);
  if (spawnSync('id', [MEMBER]).status !== 0) execFileSync('useradd', ['-M', '-N', '-g', GROUP, '-s', '/usr/sbin/nologin', MEMBER]);
  if (spawnSync('id', [OTHER]).status !== 0) execFileSync('useradd', ['-M', '-N', '-g', 'nogroup', '-s', '/usr/sbin/nologin', OTHER]);
  memberUid = Number(execFileSync('id', ['-u', MEMBER], { encoding: 'utf8' }).trim());
  groupGid = Number(execFileSync('getent', ['group', GROUP], { encoding: 'utf8' }).split(':')[2]);
}

/** openssl: a CA, a server certificate for 127.0.0.1 and a client certificate it signed. */
function pki(name: string): { ca: string; cert: string; key: string; clientCert: string; clientKey: string } {
  const p = (f: string) => join(dir, `${name}-${f}`);
  const run = (args: string[]): Buffer => execFileSync('openssl', args, { stdio: 'pipe' });
  run(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', p('ca.key'), '-out', p('ca.pem'), '-days', '2', '-subj', `/CN=${name} CA`]);
  for (const [who, ext] of [['server', 'subjectAltName=IP:127.0.0.1'], ['client', 'extendedKeyUsage=clientAuth']] as const) {
    run(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', p(`${who}.key`), '-out', p(`${who}.csr`), '-subj', `/CN=${name} ${who}`]);
    writeFileSync(p(`${who}.ext`), `${ext}\n`);
    run(['x509', '-req', '-in', p(`${who}.csr`), '-CA', p('ca.pem'), '-CAkey', p('ca.key'), '-CAcreateserial', '-out', p(`${who}.pem`), '-days', '2', '-extfile', p(`${who}.ext`)]);
  }
  return { ca: p('ca.pem'), cert: p('server.pem'), key: p('server.key'), clientCert: p('client.pem'), clientKey: p('client.key') };
}

interface Serve {
  readonly process: ChildProcess;
  stderr(): string;
}

/** Starts serve under umask 000 (so that only its own care sets the modes) and waits for "serving", or for its exit. */
async function startServe(args: string[], config: Record<string, unknown> = {}): Promise<Serve & { exit?: number }> {
  const configFile = join(dir, `config-${servers.length}.json`);
  await writeFile(configFile, JSON.stringify(config));
  const child = spawn('sh', ['-c', 'umask 000; exec "$@"', 'sh', process.execPath, '--import', 'tsx', join(ROOT, 'src/adapters/inbound/cli/bin.ts'), 'serve',
    '--work-dir', join(dir, 'work'), '--plain-http', registry.host, '--snapshotter', 'copy', '--config', configFile, ...args], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
  servers.push(child);
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const exit = await new Promise<number | undefined>((resolve) => {
    child.stderr!.on('data', () => {
      if (stderr.includes('"event":"serving"')) resolve(undefined);
    });
    child.once('exit', (code) => resolve(code ?? -1));
  });
  return { process: child, stderr: () => stderr, ...(exit !== undefined ? { exit } : {}) };
}

/** One call from a process running as `user` (root when undefined). */
function callAs(user: string | undefined, transport: 'ttrpc' | 'grpc', target: string, service: string, method: string, payload: Buffer): { ok: boolean; code?: string; status?: number; payload?: string } {
  const cmd = [process.execPath, '--import', 'tsx', join(ROOT, 'test/fixtures/rpc-call.ts'), transport, target, service, method, payload.toString('hex')];
  const r = user
    ? spawnSync('setpriv', ['--reuid', user, '--regid', execFileSync('id', ['-g', user], { encoding: 'utf8' }).trim(), '--init-groups', '--', ...cmd], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, HOME: '/tmp' } })
    : spawnSync(cmd[0]!, cmd.slice(1), { cwd: ROOT, encoding: 'utf8' });
  const line = r.stdout.trim().split('\n').pop() ?? '';
  assert.ok(line.startsWith('{'), `rpc-call printed nothing: ${r.stderr}`);
  return JSON.parse(line) as { ok: boolean; code?: string; status?: number; payload?: string };
}

/** Log lines of a serve process that match, once `count` of them have arrived (a call's line may trail its answer). */
async function logLines(s: Serve, match: (line: string) => boolean, count: number): Promise<Record<string, unknown>[]> {
  for (let waited = 0; ; waited += 50) {
    const lines = s.stderr().split('\n').filter((l) => l.startsWith('{') && match(l));
    if (lines.length >= count || waited > 5000) return lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const getResource = (path: string): Buffer => singleString(`kbs:///${path}`);
const pullRequest = (image: string, bundle: string): Buffer => new ProtoWriter().string(1, image).string(2, bundle).finish();

before(async () => {
  assert.equal(process.getuid?.(), 0, 'these tests make users and run serve as root');
  ensureAccounts();
  dir = await mkdtemp(join(tmpdir(), 'image-ts-serve-sec-'));
  await chmod(dir, 0o755); // other users must reach the sockets' own directory
  registry = await startRegistry('open', { parentDir: dir });
  await registry.pushImage('sec/app', 'v1', smallImage('confined\n'));
  const resources = join(dir, 'resources.json');
  await writeFile(resources, JSON.stringify({ 'default/secret/1': secret.toString('base64'), 'default/key/1': randomBytes(32).toString('base64') }));
  await writeFile(join(dir, 'broker.json'), JSON.stringify({ kind: 'offline-fs', files: [resources] }));
});

after(async () => {
  for (const s of servers) s.kill('SIGTERM');
  await Promise.all(servers.map((s) => (s.exitCode === null ? new Promise((r) => s.once('exit', r)) : undefined)));
  if (dir) unmountBelow(dir);
  await registry?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const broker = async (): Promise<Record<string, unknown>> => ({ key_broker: JSON.parse(await import('node:fs/promises').then((fs) => fs.readFile(join(dir, 'broker.json'), 'utf8'))) as unknown });

describe('serve: unix sockets', () => {
  it('under umask 000 the sockets are 0600 and their new directory 0700; another user cannot connect; calls log the caller', async () => {
    const sockets = join(dir, 'private', 'run');
    const s = await startServe(['--cdh-ttrpc', `unix://${sockets}/cdh.sock`, '--cdh-grpc', `unix://${sockets}/grpc.sock`], await broker());
    assert.equal(s.exit, undefined, s.stderr());
    assert.equal(statSync(sockets).mode & 0o777, 0o700);
    for (const name of ['cdh.sock', 'grpc.sock']) assert.equal(lstatSync(join(sockets, name)).mode & 0o777, 0o600, name);
    // Another user is stopped by the socket's own mode, not just the directory.
    await chmod(sockets, 0o755);
    for (const [transport, sock] of [['ttrpc', 'cdh.sock'], ['grpc', 'grpc.sock']] as const) {
      const r = callAs(OTHER, transport, `unix://${sockets}/${sock}`, 'api.GetResourceService', 'GetResource', getResource('default/secret/1'));
      assert.equal(r.ok, false, transport);
      if (transport === 'ttrpc') assert.equal(r.code, 'EACCES');
      else assert.match(JSON.stringify(r), /EACCES|Permission denied/i);
    }
    // Root is the owner: its calls go through, and each call's line names the caller and holds no secret.
    for (const [transport, sock] of [['ttrpc', 'cdh.sock'], ['grpc', 'grpc.sock']] as const) {
      const r = callAs(undefined, transport, `unix://${sockets}/${sock}`, 'api.GetResourceService', 'GetResource', getResource('default/secret/1'));
      assert.equal(r.ok, true, JSON.stringify(r));
      assert.equal(ProtoReader.decode(Buffer.from(r.payload!, 'hex')).bytes(1).toString(), secret.toString());
    }
    const lines = await logLines(s, (l) => l.includes('"event":"rpc"'), 2);
    assert.equal(lines.length, 2, s.stderr());
    for (const l of lines) {
      assert.equal(l['peer_uid'], 0);
      assert.ok(Number.isInteger(l['peer_pid']) && (l['peer_pid'] as number) > 1, JSON.stringify(l));
    }
    assert.ok(!s.stderr().includes(secret.toString()) && !s.stderr().includes(secret.toString('base64')), 'no secret in the log');
  });

  it('--socket-group: a member of the group can call, a non-member cannot; serve.allowed_uids narrows it further', async () => {
    const sockets = join(dir, 'group', 'run');
    const s = await startServe(['--cdh-ttrpc', `unix://${sockets}/cdh.sock`, '--socket-group', GROUP], await broker());
    assert.equal(s.exit, undefined, s.stderr());
    const dirStat = statSync(sockets);
    assert.equal(dirStat.mode & 0o777, 0o750);
    assert.equal(dirStat.gid, groupGid);
    const sock = lstatSync(join(sockets, 'cdh.sock'));
    assert.equal(sock.mode & 0o777, 0o660);
    assert.equal(sock.gid, groupGid);
    const member = callAs(MEMBER, 'ttrpc', `unix://${sockets}/cdh.sock`, 'api.GetResourceService', 'GetResource', getResource('default/secret/1'));
    assert.equal(member.ok, true, JSON.stringify(member));
    const other = callAs(OTHER, 'ttrpc', `unix://${sockets}/cdh.sock`, 'api.GetResourceService', 'GetResource', getResource('default/secret/1'));
    assert.equal(other.ok, false);
    assert.equal(other.code, 'EACCES');
    assert.equal((await logLines(s, (l) => l.includes('"event":"rpc"') && l.includes(`"peer_uid":${memberUid}`), 1)).length, 1, s.stderr());

    const narrowed = join(dir, 'narrow', 'run');
    const n = await startServe(['--cdh-ttrpc', `unix://${narrowed}/cdh.sock`, '--socket-group', GROUP], { ...(await broker()), serve: { allowed_uids: [0] } });
    assert.equal(n.exit, undefined, n.stderr());
    const refused = callAs(MEMBER, 'ttrpc', `unix://${narrowed}/cdh.sock`, 'api.GetResourceService', 'GetResource', getResource('default/secret/1'));
    assert.equal(refused.ok, false, 'a group member not in allowed_uids is refused');
    assert.equal(callAs(undefined, 'ttrpc', `unix://${narrowed}/cdh.sock`, 'api.GetResourceService', 'GetResource', getResource('default/secret/1')).ok, true);
    assert.equal((await logLines(n, (l) => l.includes('"event":"rpc.refused"') && l.includes(`"peer_uid":${memberUid}`), 1)).length, 1, n.stderr());
  });

  it('a path that holds anything but a stale socket is refused and left alone', async () => {
    const taken = join(dir, 'taken');
    await mkdir(taken);
    await writeFile(join(taken, 'cdh.sock'), 'not a socket');
    const s = await startServe(['--cdh-ttrpc', `unix://${taken}/cdh.sock`]);
    assert.notEqual(s.exit, undefined);
    assert.match(s.stderr(), /image-ts: INVALID_ARGUMENT: .*cdh\.sock exists and is not a socket/);
    assert.equal(s.stderr().trim().split('\n').length, 1, s.stderr());
    assert.equal(lstatSync(join(taken, 'cdh.sock')).isFile(), true);
  });
});

describe('serve: TCP', () => {
  it('a non-loopback address without mutual TLS refuses to start, with one line', async () => {
    const port = await freePort();
    const s = await startServe(['--cdh-grpc', `0.0.0.0:${port}`]);
    assert.notEqual(s.exit, undefined);
    const lines = s.stderr().trim().split('\n');
    assert.equal(lines.length, 1, s.stderr());
    assert.match(lines[0]!, /^image-ts: INVALID_ARGUMENT: 0\.0\.0\.0:\d+ is not a loopback address: serving it needs mutual TLS/);
  });

  it('with mutual TLS, only a client whose certificate the client CA signed gets through', async () => {
    const good = pki('good');
    const rogue = pki('rogue');
    const port = await freePort();
    const s = await startServe(['--cdh-grpc', `0.0.0.0:${port}`, '--tls-cert', good.cert, '--tls-key', good.key, '--tls-client-ca', good.ca, '--bundle-root', join(dir, 'tls-bundles')]);
    assert.equal(s.exit, undefined, s.stderr());
    const target = `127.0.0.1:${port}`;
    const call = async (tls: GrpcTlsOptions): Promise<string> => {
      const client = new GrpcTransport(target, { tls });
      try {
        return ProtoReader.decode(await client.unary('api.ImagePullService', 'PullImage', pullRequest(`${registry.host}/sec/app:v1`, join(dir, 'tls-bundles', `b-${randomBytes(4).toString('hex')}`)), { timeoutMs: 30_000 })).string(1);
      } finally {
        client.close();
      }
    };
    await assert.rejects(call({ rootCaFile: good.ca }), (e: unknown) => e instanceof RpcError && e.status === RpcStatus.UNAVAILABLE, 'no client certificate');
    await assert.rejects(call({ rootCaFile: good.ca, certFile: rogue.clientCert, keyFile: rogue.clientKey }), (e: unknown) => e instanceof RpcError && e.status === RpcStatus.UNAVAILABLE, 'a certificate from another CA');
    assert.match(await call({ rootCaFile: good.ca, certFile: good.clientCert, keyFile: good.clientKey }), /^sha256:/);
    assert.equal((await logLines(s, (l) => l.includes('"event":"rpc"') && l.includes('"ok":true') && l.includes('"peer":"'), 1)).length, 1, s.stderr());
  });

  it('a gRPC request over 4 MiB is refused, as ttrpc refuses one', async () => {
    const port = await freePort();
    const s = await startServe(['--cdh-grpc', `127.0.0.1:${port}`]);
    assert.equal(s.exit, undefined, s.stderr());
    const client = new GrpcTransport(`127.0.0.1:${port}`);
    try {
      await assert.rejects(client.unary('api.GetResourceService', 'GetResource', Buffer.alloc(5 * 1024 * 1024, 0x41), { timeoutMs: 10_000 }),
        (e: unknown) => e instanceof RpcError && e.status === RpcStatus.RESOURCE_EXHAUSTED);
    } finally {
      client.close();
    }
  });
});

describe('serve: what a call may reach', () => {
  it('bundle roots: outside, through .., and through a symlink in the parent are refused with nothing made; inside is pulled', async () => {
    const root = join(dir, 'bundles');
    const outside = join(dir, 'outside');
    await mkdir(root);
    await mkdir(outside);
    await symlink(outside, join(root, 'link'));
    const sock = join(dir, 'roots', 'cdh.sock');
    const s = await startServe(['--cdh-ttrpc', `unix://${sock}`, '--bundle-root', root]);
    assert.equal(s.exit, undefined, s.stderr());
    const client = new TtrpcClient(`unix://${sock}`);
    try {
      for (const bundle of [join(outside, 'b1'), `${root}/../outside/b2`, join(root, 'link', 'b3'), join(root, 'link', 'deeper', 'b4'), 'relative/b5']) {
        await assert.rejects(client.unary('api.ImagePullService', 'PullImage', pullRequest(`${registry.host}/sec/app:v1`, bundle), { timeoutMs: 30_000 }),
          (e: unknown) => e instanceof RpcError && e.status === RpcStatus.INVALID_ARGUMENT && /bundle_path/.test(e.message), bundle);
      }
      assert.deepEqual(readdirSync(outside), [], 'nothing made outside');
      const ok = await client.unary('api.ImagePullService', 'PullImage', pullRequest(`${registry.host}/sec/app:v1`, join(root, 'pod', 'c1')), { timeoutMs: 30_000 });
      assert.match(ProtoReader.decode(ok).string(1), /^sha256:/);
      assert.ok(existsSync(join(root, 'pod', 'c1', 'config.json')));
    } finally {
      client.close();
    }
  });

  it('serve.resources_allowed hands out the listed resources only', async () => {
    const sock = join(dir, 'resources', 'cdh.sock');
    const s = await startServe(['--cdh-ttrpc', `unix://${sock}`], { ...(await broker()), serve: { resources_allowed: ['default/secret/*'] } });
    assert.equal(s.exit, undefined, s.stderr());
    const client = new TtrpcClient(`unix://${sock}`);
    try {
      const got = await client.unary('api.GetResourceService', 'GetResource', getResource('default/secret/1'));
      assert.equal(ProtoReader.decode(got).bytes(1).toString(), secret.toString());
      await assert.rejects(client.unary('api.GetResourceService', 'GetResource', getResource('default/key/1')),
        (e: unknown) => e instanceof RpcError && e.status === RpcStatus.PERMISSION_DENIED && /^KEY_BROKER_DENIED: /.test(e.message));
    } finally {
      client.close();
    }
  });
});
