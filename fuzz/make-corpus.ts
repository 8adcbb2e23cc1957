/**
 * Writes the seed corpora under fuzz/corpus/<target>/ from real producers:
 * GNU tar and bsdtar in each of their formats, umoci's and skopeo's OCI
 * layouts (skopeo also encrypts to fuzz/keys/ for real jwe and pkcs7
 * recipients), gzip, igzip and node's zlib, and the project's own encoders
 * for protobuf and ttrpc frames. Run it again after changing it:
 *
 *   node --import tsx fuzz/make-corpus.ts
 *
 * Seeds are committed, so fuzzing needs none of these tools (bsdtar is
 * Debian's libarchive-tools, the others are in scripts/ensure-deps.sh).
 * Crash inputs that became regression tests are kept as seeds too (names
 * start `crash-`), and this script leaves them alone.
 */
import { execFileSync } from 'node:child_process';
import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, linkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { crc32, deflateRawSync, gzipSync } from 'node:zlib';
import { FlattenedEncrypt, GeneralEncrypt, importSPKI } from 'jose';
import { encodeStatus, ProtoWriter } from '../src/adapters/outbound/rpc/protobuf.js';
import { referrerSeeds } from './lib/referrer-seeds.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const CORPUS = join(HERE, 'corpus');
const KEYS = join(HERE, 'keys');
const scratch = mkdtempSync(join(tmpdir(), 'image-ts-corpus-'));
process.on('exit', () => rmSync(scratch, { recursive: true, force: true }));

const run = (cmd: string, args: readonly string[], opts: { cwd?: string; input?: Buffer } = {}): Buffer =>
  execFileSync(cmd, [...args], { cwd: opts.cwd, input: opts.input, maxBuffer: 64 << 20, stdio: ['pipe', 'pipe', 'pipe'] });

/** Replaces a target's generated seeds (keeps `crash-*` regression inputs). */
function seeds(target: string, files: Record<string, Buffer | string>): void {
  const dir = join(CORPUS, target);
  mkdirSync(dir, { recursive: true });
  for (const name of readdirSync(dir)) if (!name.startsWith('crash-')) rmSync(join(dir, name));
  for (const [name, data] of Object.entries(files)) writeFileSync(join(dir, name), data);
  console.log(`${target}: ${Object.keys(files).length} seeds`);
}

// ---- tar: a small tree with every entry kind, long names, xattrs and whiteouts
const tree = join(scratch, 'tree');
mkdirSync(join(tree, 'etc/deep/er'), { recursive: true });
writeFileSync(join(tree, 'etc/hello.txt'), 'hello\n');
writeFileSync(join(tree, 'etc/empty'), '');
writeFileSync(join(tree, 'etc/deep/er/x'), 'x'.repeat(700));
symlinkSync('hello.txt', join(tree, 'etc/link'));
symlinkSync('../../../outside', join(tree, 'etc/escape'));
linkSync(join(tree, 'etc/hello.txt'), join(tree, 'etc/hard'));
const long = `${'d'.repeat(60)}/${'e'.repeat(60)}/${'f'.repeat(90)}`;
mkdirSync(join(tree, dirname(long)), { recursive: true });
writeFileSync(join(tree, long), 'long\n');
symlinkSync('t'.repeat(120), join(tree, 'longlink'));
writeFileSync(join(tree, '.wh.gone'), '');
mkdirSync(join(tree, 'opaque'));
writeFileSync(join(tree, 'opaque/.wh..wh..opq'), '');
run('mkfifo', [join(tree, 'fifo')]);
run('setfattr', ['-n', 'user.note', '-v', 'fuzz', join(tree, 'etc/hello.txt')]);
const sparse = join(scratch, 'sparse');
mkdirSync(sparse);
run('truncate', ['-s', '64K', join(sparse, 'holes')]);
writeFileSync(join(sparse, 'holes'), 'data', { flag: 'r+' });

const gnuTar = (format: string, extra: string[] = [], dir = tree): Buffer =>
  run('tar', ['-c', `--format=${format}`, '-b', '1', '--sort=name', '--mtime=@1600000000', ...extra, '-C', dir, '.']);
const bsdTar = (format: string, extra: string[] = []): Buffer => run('bsdtar', ['-c', '--format', format, '-b', '1', ...extra, '-C', tree, '.']);
const tars: Record<string, Buffer> = {
  'gnu.tar': gnuTar('gnu'),
  'oldgnu.tar': gnuTar('oldgnu'),
  'ustar.tar': gnuTar('ustar', ['--exclude', './d*', '--exclude', './longlink']),
  'pax.tar': gnuTar('pax'),
  'pax-xattrs.tar': gnuTar('posix', ['--xattrs', '--xattrs-include=user.*']),
  'v7.tar': gnuTar('v7', ['--exclude', './d*', '--exclude', './longlink', '--exclude', './fifo']),
  'gnu-sparse.tar': gnuTar('gnu', ['--sparse'], sparse),
  'pax-sparse.tar': gnuTar('pax', ['--sparse'], sparse),
  'bsd-pax.tar': bsdTar('pax'),
  'bsd-ustar.tar': bsdTar('ustar', ['--exclude', './d*', '--exclude', './longlink']),
  'bsd-gnutar.tar': bsdTar('gnutar'),
  'bsd-v7.tar': bsdTar('v7', ['--exclude', './d*', '--exclude', './longlink', '--exclude', './fifo']),
};
seeds('tar', tars);
seeds('tar-privileged', tars);
// One header block is what tar-header reads: the first few blocks of each.
seeds('tar-header', Object.fromEntries(Object.entries(tars).map(([name, t]) => [name, t.subarray(0, 2048)])));

// ---- manifests, indexes and configs: umoci's layout, then skopeo's copies of it (docker schema 2 too), and encrypted ones
const layout = join(scratch, 'layout');
run('umoci', ['init', '--layout', layout]);
run('umoci', ['new', '--image', `${layout}:base`]);
const bundle = join(scratch, 'bundle');
run('umoci', ['unpack', '--rootless', '--image', `${layout}:base`, bundle]);
writeFileSync(join(bundle, 'rootfs', 'hello'), 'hello\n');
run('umoci', ['repack', '--image', `${layout}:base`, bundle]);
run('umoci', ['config', '--image', `${layout}:base`, '--tag', 'latest', '--config.user', 'app:wheel', '--config.env', 'A=1',
  '--config.entrypoint', '/bin/sh', '--config.cmd', '-c', '--config.workingdir', '/srv', '--config.label', 'k=v',
  '--config.exposedports', '8080/tcp', '--config.volume', '/data', '--architecture', 'arm64', '--os', 'linux']);
const docker = join(scratch, 'docker');
run('skopeo', ['copy', '--insecure-policy', '--format', 'v2s2', `oci:${layout}:latest`, `dir:${docker}`]);
const encrypted = join(scratch, 'encrypted');
run('skopeo', ['copy', '--insecure-policy', '--encryption-key', `jwe:${join(KEYS, 'rsa.pub.pem')}`, '--encryption-key', `jwe:${join(KEYS, 'ec.pub.pem')}`,
  '--encryption-key', `pkcs7:${join(KEYS, 'rsa.crt')}`, `oci:${layout}:latest`, `oci:${encrypted}:latest`]);

const blobs = (dir: string): Buffer[] => readdirSync(join(dir, 'blobs', 'sha256')).map((n) => readFileSync(join(dir, 'blobs', 'sha256', n)));
const json = (b: Buffer): Record<string, unknown> | undefined => {
  try {
    const v: unknown = JSON.parse(b.toString('utf8'));
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
};
const docs = [...blobs(layout), ...blobs(encrypted)].filter((b) => json(b) !== undefined);
const manifests = docs.filter((b) => json(b)!['schemaVersion'] === 2);
const configs = docs.filter((b) => json(b)!['rootfs'] !== undefined);
const dockerManifest = readFileSync(join(docker, 'manifest.json'));
const dockerConfig = readFileSync(join(docker, String((json(dockerManifest)!['config'] as { digest: string }).digest).replace('sha256:', '')));
const dockerList = Buffer.from(JSON.stringify({
  schemaVersion: 2,
  mediaType: 'application/vnd.docker.distribution.manifest.list.v2+json',
  manifests: [
    { mediaType: 'application/vnd.docker.distribution.manifest.v2+json', digest: `sha256:${createHash('sha256').update(dockerManifest).digest('hex')}`, size: dockerManifest.length, platform: { architecture: 'arm', os: 'linux', variant: 'v7' } },
    { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: `sha256:${'0'.repeat(64)}`, size: 1, platform: { architecture: 'unknown', os: 'unknown' } },
  ],
}));
seeds('manifest', {
  ...Object.fromEntries(manifests.map((b, i) => [`oci-${i}.json`, b])),
  'index.json': readFileSync(join(layout, 'index.json')),
  'encrypted-index.json': readFileSync(join(encrypted, 'index.json')),
  'docker.json': dockerManifest,
  'docker-list.json': dockerList,
  ...referrerSeeds(dockerManifest),
});
seeds('image-config', {
  ...Object.fromEntries(configs.map((b, i) => [`oci-${i}.json`, b])),
  'docker.json': dockerConfig,
  'passwd': 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n',
  'group': 'root:x:0:\nwheel:x:10:app,root\n',
});

// ---- jwe and pkcs7 recipients: what skopeo (ocicrypt) wrote, plus jose's general and flattened forms
const encManifest = manifests.map((b) => json(b)!).find((m) => Array.isArray(m['layers']) && JSON.stringify(m).includes('enc.keys'))!;
const annotations = (encManifest['layers'] as { annotations: Record<string, string> }[])[0]!.annotations;
const items = (scheme: string): Buffer[] => annotations[`org.opencontainers.image.enc.keys.${scheme}`]!.split(',').map((s) => Buffer.from(s, 'base64'));
const privopts = Buffer.from(JSON.stringify({ symkey: randomBytes(32).toString('base64'), digest: `sha256:${'1'.repeat(64)}`, cipheroptions: { nonce: randomBytes(16).toString('base64') } }));
const rsaPub = await importSPKI(readFileSync(join(KEYS, 'rsa.pub.pem'), 'utf8'), 'RSA-OAEP-256');
const ecPub = await importSPKI(readFileSync(join(KEYS, 'ec.pub.pem'), 'utf8'), 'ECDH-ES+A256KW');
const general = await new GeneralEncrypt(privopts).setProtectedHeader({ enc: 'A256GCM' })
  .addRecipient(rsaPub).setUnprotectedHeader({ alg: 'RSA-OAEP-256' })
  .addRecipient(ecPub).setUnprotectedHeader({ alg: 'ECDH-ES+A256KW' }).encrypt();
const flattened = await new FlattenedEncrypt(privopts).setProtectedHeader({ alg: 'ECDH-ES+A256KW', enc: 'A128CBC-HS256' }).encrypt(ecPub);
seeds('jwe', {
  ...Object.fromEntries(items('jwe').map((b, i) => [`ocicrypt-${i}.json`, b])),
  'jose-general.json': JSON.stringify(general),
  'jose-flattened.json': JSON.stringify(flattened),
});
seeds('pkcs7', Object.fromEntries(items('pkcs7').map((b, i) => [`ocicrypt-${i}.der`, b])));

// ---- key provider: AnnotationPackets sealed under the harness's KEK (32 bytes of 7), protocol JSON, layer options
const KEK = Buffer.alloc(32, 7);
function packet(wrapType: 'A256GCM' | 'A256CTR', extra: Record<string, unknown> = {}): Buffer {
  const iv = randomBytes(wrapType === 'A256GCM' ? 12 : 16);
  const c = createCipheriv(wrapType === 'A256GCM' ? 'aes-256-gcm' : 'aes-256-ctr', KEK, iv);
  const wrapped = Buffer.concat([c.update(privopts), c.final(), wrapType === 'A256GCM' ? (c as ReturnType<typeof createCipheriv> & { getAuthTag(): Buffer }).getAuthTag() : Buffer.alloc(0)]);
  return Buffer.from(JSON.stringify({ kid: 'kbs:///default/key/1', wrapped_data: wrapped.toString('base64'), iv: iv.toString('base64'), wrap_type: wrapType, ...extra }));
}
const gcmPacket = packet('A256GCM');
const unwrapRequest = (annotation: Buffer): Buffer => Buffer.from(JSON.stringify({
  op: 'keyunwrap',
  keywrapparams: { ec: null, optsdata: null },
  keyunwrapparams: { dc: { Parameters: { 'attestation-agent': [Buffer.from('aa').toString('base64')] } }, annotation: annotation.toString('base64') },
}));
seeds('key-provider', {
  'packet-gcm.json': gcmPacket,
  'packet-ctr.json': packet('A256CTR'),
  'packet-v2.json': packet('A256GCM', { version: '0.1.0', provider: 'kbs', provider_settings: {}, annotations: {} }),
  'unwrap-request.json': unwrapRequest(gcmPacket),
  'unwrap-output-go.json': JSON.stringify({ keyunwrapresults: { optsdata: privopts.toString('base64') } }),
  'unwrap-output-rust.json': JSON.stringify({ keyunwrapresults: { optsdata: [...privopts.subarray(0, 40)] } }),
  'pubopts.json': Buffer.from(annotations['org.opencontainers.image.enc.pubopts']!, 'base64'),
  'privopts.json': privopts,
  'uri.txt': 'kbs://example.com:8080/default/key/1?version=2',
  'uri-plugin.txt': 'kbs+sealed:///a/b%2Fc',
});

// ---- policy.json and signature payloads
const keyData = readFileSync(join(KEYS, 'rsa.pub.pem')).toString('base64');
seeds('policy', {
  'accept.json': JSON.stringify({ default: [{ type: 'insecureAcceptAnything' }] }),
  'full.json': JSON.stringify({
    default: [{ type: 'reject' }],
    transports: {
      docker: {
        'docker.io/library/busybox': [{ type: 'signedBy', keyType: 'GPGKeys', keyPath: '/keys/pub.gpg', signedIdentity: { type: 'matchRepository' } }],
        'quay.io/a': [{ type: 'sigstoreSigned', keyData, signedIdentity: { type: 'remapIdentity', prefix: 'quay.io/a', signedPrefix: 'mirror.io/a' } }],
        'localhost:5000': [{ type: 'sigstoreSigned', fulcio: { caData: keyData, oidcIssuer: 'https://issuer', subjectEmail: 'a@b.c' }, rekorPublicKeyData: keyData }],
        'example.com/x:1': [{ type: 'signedBy', keyType: 'GPGKeys', keyPaths: ['/a', '/b'], signedIdentity: { type: 'exactReference', dockerReference: 'example.com/x:1' } }],
        '*.example.com': [{ type: 'signedBaseLayer', baseLayerIdentity: { type: 'exactRepository', dockerRepository: 'x.io/b' } }],
        '': [{ type: 'insecureAcceptAnything' }],
      },
      atomic: { 'registry.example/ns': [{ type: 'reject' }] },
      'docker-daemon': { '': [{ type: 'insecureAcceptAnything' }] },
    },
  }, null, 2),
  'simple-signing.json': JSON.stringify({
    critical: { type: 'atomic container signature', image: { 'docker-manifest-digest': `sha256:${'a'.repeat(64)}` }, identity: { 'docker-reference': 'docker.io/library/busybox:latest' } },
    optional: { creator: 'fuzz', timestamp: 1600000000 },
  }),
  'cosign.json': JSON.stringify({
    critical: { type: 'cosign container image signature', image: { 'docker-manifest-digest': `sha256:${'b'.repeat(64)}` }, identity: { 'docker-reference': 'quay.io/a/b' } },
    optional: null,
  }),
});

// ---- registries.conf: v2 TOML, v1 TOML, image-rs's inline JSON
seeds('registries-conf', {
  'v2.conf': `unqualified-search-registries = ["docker.io", "quay.io"]
short-name-mode = "enforcing"
credential-helpers = ["containers-auth.json"]

[aliases]
"busybox" = "docker.io/library/busybox"
"app" = "quay.io/org/app"

[[registry]]
prefix = "docker.io/library"
location = "mirror.gcr.io/library"
insecure = false
blocked = false

[[registry.mirror]]
location = "localhost:5000/library"
insecure = true
pull-from-mirror = "digest-only"

[[registry]]
prefix = "*.example.com"
location = "example.org"
blocked = true

[[registry]]
location = "quay.io/org/app@sha256:${'cd'.repeat(32)}"
mirror-by-digest-only = true
`,
  'v1.conf': `[registries.search]
registries = ["docker.io", "registry.fedoraproject.org"]

[registries.insecure]
registries = ["localhost:5000"]

[registries.block]
registries = ["evil.example.com"]
`,
  'inline.json': JSON.stringify({
    'unqualified-search-registries': ['docker.io'],
    registry: [{ prefix: 'docker.io', location: 'docker.io', mirror: [{ location: 'mirror.example.com:443' }] }],
  }),
});

// ---- WWW-Authenticate
seeds('www-authenticate', {
  'bearer.txt': 'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"',
  'basic.txt': 'Basic realm="Registry Realm", charset="UTF-8"',
  'several.txt': 'Newauth realm="apps", type=1, title="Login to \\"apps\\"", Basic realm="simple"\nBearer token68abc==, Digest nonce="x", qop="auth,auth-int"',
  'auth.json': JSON.stringify({ auths: {
    'https://index.docker.io/v1/': { auth: Buffer.from('user:pass').toString('base64') },
    'quay.io/org': { identitytoken: 'tok' },
    'localhost:5000': { auth: Buffer.from('a:b:c').toString('base64'), identitytoken: null },
  } }),
});

// ---- protobuf: messages from the project's own encoder
const pull = new ProtoWriter().string(1, 'quay.io/org/app:1').string(2, '/run/bundle').finish();
const status = encodeStatus({ code: 5, message: 'NOT_FOUND: no such image', details: [{ typeUrl: 'type.googleapis.com/x', value: Buffer.from('detail') }] });
const mixed = new ProtoWriter().uint64(1, 2n ** 63n).int32(2, -1).bool(3, true).bytes(4, Buffer.from([0, 1, 2])).message(5, new ProtoWriter().string(1, 'k').string(2, 'v')).finish();
seeds('protobuf', { 'pull-request.bin': pull, 'status.bin': status, 'mixed.bin': mixed });

// ---- ttrpc: request frames for each CDH method, as containerd's client sends them
function frame(streamId: number, type: number, body: Buffer): Buffer {
  const h = Buffer.alloc(10);
  h.writeUInt32BE(body.length, 0);
  h.writeUInt32BE(streamId, 4);
  h.writeUInt8(type, 8);
  return Buffer.concat([h, body]);
}
const request = (service: string, method: string, payload: Buffer, timeoutNano = 0n, metadata: Record<string, string> = {}): Buffer => {
  const w = new ProtoWriter().string(1, service).string(2, method).bytes(3, payload).int64(4, timeoutNano);
  for (const [k, v] of Object.entries(metadata)) w.message(5, new ProtoWriter().string(1, k).string(2, v));
  return w.finish();
};
const single = (field: 'bytes' | 'string', v: Buffer | string): Buffer =>
  field === 'bytes' ? new ProtoWriter().bytes(1, v as Buffer).finish() : new ProtoWriter().string(1, v as string).finish();
seeds('ttrpc', {
  'pull.bin': frame(1, 1, request('api.ImagePullService', 'PullImage', pull, 5_000_000_000n, { 'x-trace': 'abc' })),
  'get-resource.bin': frame(3, 1, request('api.GetResourceService', 'GetResource', single('string', 'kbs:///default/key/1'))),
  'unwrap.bin': frame(5, 1, request('keyprovider.KeyProviderService', 'UnWrapKey', single('bytes', unwrapRequest(gcmPacket)))),
  'several.bin': Buffer.concat([
    frame(7, 1, request('keyprovider.KeyProviderService', 'WrapKey', Buffer.alloc(0))),
    frame(9, 1, request('no.Such', 'Method', Buffer.alloc(0))),
    frame(9, 2, Buffer.from([8, 1])),
    frame(11, 1, request('api.GetResourceService', 'GetResource', single('string', 'kbs:///a/b/c'))),
  ]),
  'oversize.bin': Buffer.concat([Buffer.from([0, 0x40, 0, 1, 0, 0, 0, 13, 1, 0]), Buffer.alloc(64)]),
});

// ---- gunzip: 4 parameter bytes (output chunk size, chunks per push, split seed), then a gzip stream
const text = Buffer.from(readFileSync(join(HERE, '..', 'README.md'), 'utf8').slice(0, 6000));
function gzipMember(data: Buffer, flags: { extra?: Buffer; name?: string; comment?: string; hcrc?: boolean }): Buffer {
  let flg = 0;
  const parts: Buffer[] = [];
  if (flags.extra) {
    flg |= 4;
    const xlen = Buffer.alloc(2);
    xlen.writeUInt16LE(flags.extra.length);
    parts.push(xlen, flags.extra);
  }
  if (flags.name !== undefined) {
    flg |= 8;
    parts.push(Buffer.from(`${flags.name}\0`, 'latin1'));
  }
  if (flags.comment !== undefined) {
    flg |= 16;
    parts.push(Buffer.from(`${flags.comment}\0`, 'latin1'));
  }
  if (flags.hcrc) flg |= 2;
  let header = Buffer.concat([Buffer.from([0x1f, 0x8b, 8, flg, 0, 0, 0, 0, 0, 3]), ...parts]);
  if (flags.hcrc) {
    const c = Buffer.alloc(2);
    c.writeUInt16LE(crc32(header) & 0xffff);
    header = Buffer.concat([header, c]);
  }
  const trailer = Buffer.alloc(8);
  trailer.writeUInt32LE(crc32(data), 0);
  trailer.writeUInt32LE(data.length >>> 0, 4);
  return Buffer.concat([header, deflateRawSync(data), trailer]);
}
const params = (chunk: number, maxChunks: number, seed: number): Buffer => Buffer.from([chunk >> 8, chunk & 0xff, maxChunks, seed]);
const smallTar = tars['ustar.tar']!.subarray(0, 4096);
seeds('gunzip', {
  'gzip.bin': Buffer.concat([params(511, 1, 1), run('gzip', ['-9', '-n'], { input: smallTar })]),
  'gzip-name.bin': Buffer.concat([params(4095, 0, 2), run('gzip', ['-1', '-N'], { input: text })]),
  'igzip.bin': Buffer.concat([params(64, 2, 3), run('igzip', ['-c', '-3'], { input: smallTar })]),
  'zlib.bin': Buffer.concat([params(1000, 3, 4), gzipSync(text)]),
  'all-fields.bin': Buffer.concat([params(17, 1, 5), gzipMember(text.subarray(0, 2000), { extra: Buffer.from('AB\x04\x00abcd'), name: 'layer.tar', comment: 'fuzz', hcrc: true })]),
  'members.bin': Buffer.concat([params(300, 2, 6), gzipSync(Buffer.from('one')), gzipMember(Buffer.from('two'), { name: 'n' }), gzipSync(Buffer.alloc(0))]),
  'trailing.bin': Buffer.concat([params(100, 0, 7), gzipSync(Buffer.from('data')), Buffer.from('\0\0\0\0garbage')]),
  'stored.bin': Buffer.concat([params(4095, 1, 8), gzipSync(randomBytes(300), { level: 0 })]),
});

// ---- references, digests and platforms as users and policies write them
seeds('reference', {
  'short.txt': 'busybox',
  'tagged.txt': 'docker://quay.io/org/app:v1.2.3',
  'digest.txt': `localhost:5000/a/b-c/d__e@sha256:${'0f'.repeat(32)}`,
  'both.txt': `[::1]:5000/x:latest@sha512:${'ab'.repeat(64)}`,
  'legacy.txt': 'index.docker.io/library/ubuntu',
  'platform.txt': 'linux/arm64/v8',
});
