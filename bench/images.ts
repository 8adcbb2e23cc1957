/**
 * Builds the images the benchmark pulls, as OCI image layouts under a cache
 * directory, once: later calls find them there and return at once.
 *
 *   debian-gzip   ~240 real Debian bookworm packages (dpkg -x), 3 layers of
 *                 packages plus a cleanup layer with whiteouts, an opaque
 *                 directory and modified files; gzip -6
 *   debian-zstd   the same four layer tars, zstd -3
 *   small-files   one gzip layer of 100,000 text-like files of 1-4 KB
 *   big-file      one gzip layer holding a single 512 MiB file (~2.5x gzip ratio)
 *
 * Layer tars are streamed from GNU tar (or generated here) through sha256 and
 * the compressors into the layout's blobs; they never touch the disk and
 * never sit whole in memory. The .deb downloads stay in CACHE/debs.
 */
import { spawn } from 'node:child_process';
import { createHash, type Hash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { lstat, mkdir, open, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Transform, type TransformCallback, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { processAlive } from '../src/adapters/outbound/process-alive.js';
import { seededRandom } from '../test/helpers/seeded-random.js';

export interface BenchImage {
  name: string;
  description: string;
  layout: string;
  ref: string;
  layers: { digest: string; size: number; mediaType: string; diffId: string; uncompressedSize: number }[];
  uncompressedBytes: number;
  files: number;
}

/** Bump when anything below changes what gets built: the cache is keyed by it. */
const RECIPE_VERSION = 2;

export const BENCH_IMAGE_NAMES = ['debian-gzip', 'debian-zstd', 'small-files', 'big-file', 'zeros-gzip', 'zeros-zstd'] as const;
type BenchImageName = (typeof BENCH_IMAGE_NAMES)[number];

const MT_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const MT_INDEX = 'application/vnd.oci.image.index.v1+json';
const MT_CONFIG = 'application/vnd.oci.image.config.v1+json';
const MT_GZIP = 'application/vnd.oci.image.layer.v1.tar+gzip';
const MT_ZSTD = 'application/vnd.oci.image.layer.v1.tar+zstd';
const REF_ANNOTATION = 'org.opencontainers.image.ref.name';
const META_FILE = 'bench-image.json';

/** Every layer's mtime, and the images' creation time. */
const EPOCH = 1_700_000_000;
const CREATED = new Date(EPOCH * 1000).toISOString();
const MB = 1024 * 1024;

/**
 * What the debian images are made of, a C/C++ and scripting dev box: their
 * dependency closure (first alternative, no recommends) is ~235 packages,
 * ~835 MB and ~40,000 files, 16,000 of them Boost headers.
 */
const DEBIAN_ROOTS = [
  'python3', 'python3-pip', 'python3-venv', 'perl', 'git', 'gcc', 'g++', 'make', 'cmake', 'autoconf', 'automake',
  'libtool', 'pkg-config', 'curl', 'wget', 'vim', 'less', 'openssh-client', 'gnupg', 'ca-certificates', 'libssl-dev', 'zlib1g-dev',
  'libboost-dev', 'postgresql-client', 'locales', 'tzdata', 'iproute2', 'procps', 'sudo', 'unzip', 'zip', 'xz-utils', 'file', 'jq', 'rsync',
  'bash-completion', 'man-db', 'strace', 'htop',
];
const MIN_DEBIAN_BYTES = 400 * 1024 * 1024;

const GZIP: Compressor = { mediaType: MT_GZIP, command: 'gzip', args: ['-6', '-n', '-c'] };
const ZSTD: Compressor = { mediaType: MT_ZSTD, command: 'zstd', args: ['-3', '-q', '-c', '--no-progress', '-'] };

type Log = (line: string) => void;

export async function ensureBenchImages(cacheDir: string, log: (line: string) => void, only?: string[]): Promise<BenchImage[]> {
  const names = selectNames(only);
  const cache = resolve(cacheDir);
  const root = join(cache, `images-v${RECIPE_VERSION}`);
  await mkdir(root, { recursive: true });
  const say: Log = (line) => log(`[bench-images] ${line}`);
  const unlock = await lock(join(root, '.lock'), say);
  try {
    await dropStaleVersions(cache, say);
    const found = new Map<BenchImageName, BenchImage>();
    for (const name of names) {
      const image = await loadCached(join(root, name));
      if (image) found.set(name, image);
    }
    const missing = names.filter((n) => !found.has(n));
    if (missing.length > 0) say(`building ${missing.join(', ')} under ${root}`);
    const debian = missing.filter((n): n is 'debian-gzip' | 'debian-zstd' => n === 'debian-gzip' || n === 'debian-zstd');
    if (debian.length > 0) for (const image of await buildDebian(root, cache, debian, say)) found.set(image.name as BenchImageName, image);
    if (missing.includes('small-files')) found.set('small-files', await buildSmallFiles(root, say));
    if (missing.includes('big-file')) found.set('big-file', await buildBigFile(root, say));
    for (const c of ['gzip', 'zstd'] as const) {
      const name = `zeros-${c}` as const;
      if (missing.includes(name)) found.set(name, await buildZeros(root, say, c));
    }
    return names.map((n) => found.get(n)!);
  } finally {
    await unlock();
  }
}

function selectNames(only: string[] | undefined): BenchImageName[] {
  if (only === undefined) return [...BENCH_IMAGE_NAMES];
  const known = new Set<string>(BENCH_IMAGE_NAMES);
  const unknown = only.filter((n) => !known.has(n));
  if (unknown.length > 0) throw new Error(`unknown bench image(s) ${unknown.join(', ')}; known: ${BENCH_IMAGE_NAMES.join(', ')}`);
  return [...new Set(only)] as BenchImageName[];
}

// ---------------------------------------------------------------------------
// Cache bookkeeping

/** One builder per cache at a time: a pid file, taken over when its process is gone. */
async function lock(path: string, log: Log): Promise<() => Promise<void>> {
  let waitedSince = 0;
  for (;;) {
    try {
      const fh = await open(path, 'wx');
      await fh.writeFile(String(process.pid));
      await fh.close();
      return async () => {
        await rm(path, { force: true });
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const pid = Number((await readFile(path, 'utf8').catch(() => '')).trim());
    if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid || !processAlive(pid)) {
      await rm(path, { force: true });
      continue;
    }
    const now = Date.now();
    if (waitedSince === 0 || now - waitedSince > 30_000) {
      log(`waiting for process ${pid}, which is building the images`);
      waitedSince = now;
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}

async function dropStaleVersions(cache: string, log: Log): Promise<void> {
  for (const entry of await readdir(cache)) {
    if (/^images-v\d+$/.test(entry) && entry !== `images-v${RECIPE_VERSION}`) {
      log(`removing ${entry}, built by an older recipe`);
      await rm(join(cache, entry), { recursive: true, force: true });
    }
  }
}

/** The image recorded in DIR/bench-image.json, if it and all its blobs are there. */
async function loadCached(dir: string): Promise<BenchImage | undefined> {
  let meta: unknown;
  try {
    meta = JSON.parse(await readFile(join(dir, META_FILE), 'utf8'));
  } catch {
    return undefined;
  }
  if (!isBenchImage(meta)) return undefined;
  meta.layout = dir; // the cache may have been moved since it was built
  for (const layer of meta.layers) {
    const st = await stat(blobPath(dir, layer.digest)).catch(() => undefined);
    if (!st || st.size !== layer.size) return undefined;
  }
  const index = await stat(join(dir, 'index.json')).catch(() => undefined);
  return index ? meta : undefined;
}

function isBenchImage(v: unknown): v is BenchImage {
  if (typeof v !== 'object' || v === null) return false;
  const o = v as Record<string, unknown>;
  const layers = o['layers'];
  return (
    typeof o['name'] === 'string' &&
    typeof o['description'] === 'string' &&
    typeof o['layout'] === 'string' &&
    typeof o['ref'] === 'string' &&
    typeof o['uncompressedBytes'] === 'number' &&
    typeof o['files'] === 'number' &&
    Array.isArray(layers) &&
    layers.every((l: unknown) => {
      if (typeof l !== 'object' || l === null) return false;
      const r = l as Record<string, unknown>;
      return (
        typeof r['digest'] === 'string' &&
        /^sha256:[0-9a-f]{64}$/.test(r['digest']) &&
        typeof r['size'] === 'number' &&
        typeof r['mediaType'] === 'string' &&
        typeof r['diffId'] === 'string' &&
        typeof r['uncompressedSize'] === 'number'
      );
    })
  );
}

function blobPath(layout: string, digest: string): string {
  return join(layout, 'blobs', 'sha256', digest.slice('sha256:'.length));
}

// ---------------------------------------------------------------------------
// Child processes

interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion, collecting its output (which should be modest). */
function run(command: string, args: string[], opts: { cwd?: string } = {}): Promise<RunResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(command, args, { cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', reject);
    child.on('close', (code, signal) =>
      resolvePromise({
        code: code ?? (signal ? 128 : 1),
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
      }),
    );
  });
}

async function runOk(command: string, args: string[], opts: { cwd?: string } = {}): Promise<string> {
  const r = await run(command, args, opts);
  if (r.code !== 0) throw new Error(`${command} ${args.slice(0, 6).join(' ')}${args.length > 6 ? ' ...' : ''} exited ${r.code}: ${lastLines(r.stderr)}`);
  return r.stdout;
}

function lastLines(text: string, n = 5): string {
  return text.trim().split('\n').slice(-n).join(' | ');
}

// ---------------------------------------------------------------------------
// Layer encoding: one tar stream, hashed and counted, fed to 1..n compressors

interface Compressor {
  mediaType: string;
  command: string;
  args: string[];
}

interface EncodedLayer {
  diffId: string;
  uncompressedSize: number;
  entries: number;
  /** One per compressor, in the order given. */
  blobs: { digest: string; size: number; mediaType: string }[];
}

/**
 * Counts the entries of a tar stream without buffering it: walks the 512-byte
 * headers, skipping bodies. Extended headers (pax x/g, GNU L/K) describe the
 * next entry and are not counted; a pax `size` record overrides the next size.
 */
class TarEntryCounter {
  entries = 0;
  private readonly header = Buffer.alloc(512);
  private fill = 0;
  private skip = 0;
  private pax: Buffer[] | undefined;
  private paxLeft = 0;
  private paxPad = 0;
  private nextSize: number | undefined;

  update(chunk: Buffer): void {
    let off = 0;
    while (off < chunk.length) {
      if (this.pax) {
        const n = Math.min(this.paxLeft, chunk.length - off);
        this.pax.push(chunk.subarray(off, off + n));
        this.paxLeft -= n;
        off += n;
        if (this.paxLeft === 0) {
          this.nextSize = paxSize(Buffer.concat(this.pax));
          this.pax = undefined;
          this.skip = this.paxPad;
        }
        continue;
      }
      if (this.skip > 0) {
        const n = Math.min(this.skip, chunk.length - off);
        this.skip -= n;
        off += n;
        continue;
      }
      const n = Math.min(512 - this.fill, chunk.length - off);
      chunk.copy(this.header, this.fill, off, off + n);
      this.fill += n;
      off += n;
      if (this.fill < 512) return;
      this.fill = 0;
      this.onHeader();
    }
  }

  private onHeader(): void {
    const h = this.header;
    if (h.every((b) => b === 0)) return;
    const type = String.fromCharCode(h[156]!);
    const size = this.nextSize ?? tarNumber(h.subarray(124, 136));
    const padded = Math.ceil(size / 512) * 512;
    if (type === 'x' && size < 1024 * 1024) {
      this.pax = [];
      this.paxLeft = size;
      this.paxPad = padded - size;
      if (size === 0) {
        this.pax = undefined;
        this.skip = this.paxPad;
      }
      return;
    }
    this.nextSize = undefined;
    // Bodies are skipped for every type: hard links, symlinks and directories carry size 0.
    this.skip = type === '1' || type === '2' || type === '5' ? 0 : padded;
    if (type !== 'x' && type !== 'g' && type !== 'L' && type !== 'K') this.entries++;
  }
}

function tarNumber(field: Buffer): number {
  if (field[0]! & 0x80) {
    let v = field[0]! & 0x7f;
    for (let i = 1; i < field.length; i++) v = v * 256 + field[i]!;
    return v;
  }
  const s = field.toString('ascii').replace(/\0.*$/s, '').trim();
  return s === '' ? 0 : parseInt(s, 8);
}

function paxSize(body: Buffer): number | undefined {
  let size: number | undefined;
  for (const record of body.toString('utf8').split('\n')) {
    const m = /^\d+ size=(\d+)$/.exec(record);
    if (m) size = Number(m[1]);
  }
  return size;
}

/** Passes bytes through, hashing and counting them. */
class Digester extends Transform {
  private readonly hash: Hash = createHash('sha256');
  bytes = 0;

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    cb(null, chunk);
  }

  digest(): string {
    return `sha256:${this.hash.digest('hex')}`;
  }
}

interface RunningCompressor {
  stdin: Writable;
  error: () => Error | undefined;
  done: Promise<{ digest: string; size: number; mediaType: string }>;
}

let tmpCounter = 0;

/** Starts a compressor whose output streams, hashed, into a temporary file in the layout and is renamed to its digest. */
function startCompressor(c: Compressor, layout: string): RunningCompressor {
  const tmp = join(layout, 'blobs', 'sha256', `.tmp-${process.pid}-${tmpCounter++}`);
  const child = spawn(c.command, c.args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let failure: Error | undefined;
  const stderr: Buffer[] = [];
  child.stderr.on('data', (b: Buffer) => stderr.push(b));
  child.stdin.on('error', (err) => (failure ??= err));
  const exited = new Promise<void>((res, rej) => {
    child.on('error', (err) => {
      failure ??= err;
      rej(err);
    });
    child.on('close', (code, signal) => {
      if (code === 0) res();
      else {
        const err = new Error(`${c.command} ${c.args.join(' ')} failed (${code ?? signal}): ${lastLines(Buffer.concat(stderr).toString('utf8'))}`);
        failure ??= err;
        rej(err);
      }
    });
  });
  const digester = new Digester();
  const written = pipeline(child.stdout, digester, createWriteStream(tmp));
  const done = (async () => {
    try {
      await Promise.all([exited, written]);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
    const digest = digester.digest();
    await rename(tmp, blobPath(layout, digest));
    return { digest, size: digester.bytes, mediaType: c.mediaType };
  })();
  done.catch(() => undefined); // observed by the caller; this keeps an early failure from being "unhandled"
  return { stdin: child.stdin, error: () => failure, done };
}

async function writeAll(w: Writable, chunk: Buffer, failed: () => Error | undefined): Promise<void> {
  const err = failed();
  if (err) throw err;
  if (w.write(chunk)) return;
  await new Promise<void>((res, rej) => {
    const onDrain = (): void => {
      w.off('close', onClose);
      res();
    };
    const onClose = (): void => {
      w.off('drain', onDrain);
      rej(failed() ?? new Error('compressor closed its input early'));
    };
    w.once('drain', onDrain);
    w.once('close', onClose);
  });
}

/**
 * Streams a tar through sha256 (the diff_id), the entry counter and every
 * compressor, each writing its blob into its own layout.
 */
async function encodeLayer(tar: AsyncIterable<Buffer>, outputs: { compressor: Compressor; layout: string }[]): Promise<EncodedLayer> {
  const running = outputs.map((o) => startCompressor(o.compressor, o.layout));
  const hash = createHash('sha256');
  const counter = new TarEntryCounter();
  let bytes = 0;
  try {
    for await (const chunk of tar) {
      hash.update(chunk);
      counter.update(chunk);
      bytes += chunk.length;
      await Promise.all(running.map((r) => writeAll(r.stdin, chunk, r.error)));
    }
    for (const r of running) r.stdin.end();
    const blobs = await Promise.all(running.map((r) => r.done));
    return { diffId: `sha256:${hash.digest('hex')}`, uncompressedSize: bytes, entries: counter.entries, blobs };
  } catch (err) {
    for (const r of running) r.stdin.destroy();
    await Promise.allSettled(running.map((r) => r.done));
    throw err;
  }
}

/** GNU tar of a directory's contents, reproducible, entries named ./... */
async function* gnuTar(dir: string): AsyncGenerator<Buffer> {
  const child = spawn(
    'tar',
    [
      '--numeric-owner', '--owner=0', '--group=0', '--sort=name', `--mtime=@${EPOCH}`, '--format=pax',
      // No atime/ctime records and no pid in extended header names: the same tree gives the same tar.
      '--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime',
      '-C', dir, '-cf', '-', '.',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const stderr: Buffer[] = [];
  child.stderr.on('data', (b: Buffer) => stderr.push(b));
  const exited = new Promise<number>((res, rej) => {
    child.on('error', rej);
    child.on('close', (code, signal) => res(code ?? (signal ? 128 : 1)));
  });
  try {
    for await (const chunk of child.stdout) yield chunk as Buffer;
    const code = await exited;
    if (code !== 0) throw new Error(`tar -C ${dir} exited ${code}: ${lastLines(Buffer.concat(stderr).toString('utf8'))}`);
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill();
  }
}

// ---------------------------------------------------------------------------
// OCI layout

class LayoutWriter {
  constructor(readonly dir: string) {}

  async init(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
    await mkdir(join(this.dir, 'blobs', 'sha256'), { recursive: true });
    await writeFile(join(this.dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  }

  private async jsonBlob(doc: unknown): Promise<{ digest: string; size: number }> {
    const bytes = Buffer.from(JSON.stringify(doc));
    const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    await writeFile(blobPath(this.dir, digest), bytes);
    return { digest, size: bytes.length };
  }

  /** Writes config, manifest and index.json, then the metadata file that marks the image complete, and moves it to `finalDir`. */
  async finish(
    finalDir: string,
    image: { name: string; description: string; cmd: string[]; history: string[] },
    layers: { encoded: EncodedLayer; blob: EncodedLayer['blobs'][number] }[],
  ): Promise<BenchImage> {
    const config = {
      created: CREATED,
      architecture: 'amd64',
      os: 'linux',
      config: {
        Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
        Cmd: image.cmd,
        WorkingDir: '/',
        Labels: { 'org.opencontainers.image.title': image.name, 'io.image-ts.bench.recipe': String(RECIPE_VERSION) },
      },
      rootfs: { type: 'layers', diff_ids: layers.map((l) => l.encoded.diffId) },
      history: image.history.map((createdBy) => ({ created: CREATED, created_by: createdBy, comment: 'image-ts bench' })),
    };
    const configDesc = await this.jsonBlob(config);
    const manifest = {
      schemaVersion: 2,
      mediaType: MT_MANIFEST,
      config: { mediaType: MT_CONFIG, digest: configDesc.digest, size: configDesc.size },
      layers: layers.map((l) => ({ mediaType: l.blob.mediaType, digest: l.blob.digest, size: l.blob.size })),
      annotations: { 'org.opencontainers.image.created': CREATED, 'org.opencontainers.image.description': image.description },
    };
    const manifestDesc = await this.jsonBlob(manifest);
    const ref = image.name;
    const index = {
      schemaVersion: 2,
      mediaType: MT_INDEX,
      manifests: [
        {
          mediaType: MT_MANIFEST,
          digest: manifestDesc.digest,
          size: manifestDesc.size,
          platform: { architecture: 'amd64', os: 'linux' },
          annotations: { [REF_ANNOTATION]: ref },
        },
      ],
    };
    await writeFile(join(this.dir, 'index.json'), JSON.stringify(index));
    const meta: BenchImage = {
      name: image.name,
      description: image.description,
      layout: finalDir,
      ref,
      layers: layers.map((l) => ({
        digest: l.blob.digest,
        size: l.blob.size,
        mediaType: l.blob.mediaType,
        diffId: l.encoded.diffId,
        uncompressedSize: l.encoded.uncompressedSize,
      })),
      uncompressedBytes: layers.reduce((s, l) => s + l.encoded.uncompressedSize, 0),
      files: layers.reduce((s, l) => s + l.encoded.entries, 0),
    };
    await writeFile(join(this.dir, META_FILE), `${JSON.stringify(meta, null, 2)}\n`);
    await rm(finalDir, { recursive: true, force: true });
    await rename(this.dir, finalDir);
    return meta;
  }
}

function mb(bytes: number): string {
  return `${(bytes / MB).toFixed(1)} MB`;
}

function secs(since: number): string {
  return `${((Date.now() - since) / 1000).toFixed(1)}s`;
}

function describeLayer(e: EncodedLayer): string {
  return `${mb(e.uncompressedSize)} tar, ${e.entries} entries -> ${e.blobs.map((b) => `${b.mediaType.split('+')[1]} ${mb(b.size)}`).join(', ')}`;
}

// ---------------------------------------------------------------------------
// debian-gzip / debian-zstd

interface DebPackage {
  name: string;
  version: string;
  arch: string;
  size: number;
  sha256: string;
  installedKiB: number;
  file: string;
}

const DEPENDS_FLAGS = ['--no-recommends', '--no-suggests', '--no-conflicts', '--no-breaks', '--no-replaces', '--no-enhances'];

async function ensureAptLists(log: Log): Promise<void> {
  const policy = await run('apt-cache', ['policy', 'bash']);
  if (policy.code === 0 && /Candidate: (?!\(none\))\S+/.test(policy.stdout)) return;
  log('apt-cache knows no packages; running apt-get update');
  await runOk('apt-get', ['update']);
}

/**
 * The dependency closure of DEBIAN_ROOTS, the way apt would resolve it without
 * recommends: Depends and Pre-Depends, first alternative of each or-group, a
 * virtual package's first provider. (`apt-cache depends --recurse` would follow
 * every alternative and drag in Qt and GTK.)
 */
async function resolvePackages(log: Log): Promise<DebPackage[]> {
  await ensureAptLists(log);
  const seen = new Set<string>();
  let frontier = [...DEBIAN_ROOTS];
  while (frontier.length > 0) {
    for (const p of frontier) seen.add(p);
    const r = await run('apt-cache', ['depends', ...DEPENDS_FLAGS, ...frontier]);
    if (r.stdout.trim() === '') throw new Error(`apt-cache depends found nothing: ${lastLines(r.stderr)}`);
    const next = new Set<string>();
    for (const dep of firstAlternatives(r.stdout)) if (!seen.has(dep) && !dep.includes(':')) next.add(dep);
    frontier = [...next];
  }
  const names = [...seen].sort();
  const show = await run('apt-cache', ['show', '--no-all-versions', ...names]);
  const packages: DebPackage[] = [];
  for (const stanza of show.stdout.split(/\n\n+/)) {
    const f = new Map<string, string>();
    for (const line of stanza.split('\n')) {
      const m = /^([A-Za-z0-9-]+): (.*)$/.exec(line);
      if (m) f.set(m[1]!, m[2]!);
    }
    const name = f.get('Package');
    const version = f.get('Version');
    const arch = f.get('Architecture');
    const sha256 = f.get('SHA256');
    if (!name || !version || !arch || !sha256 || (arch !== 'amd64' && arch !== 'all')) continue;
    if (packages.some((p) => p.name === name)) continue;
    packages.push({
      name,
      version,
      arch,
      size: Number(f.get('Size') ?? 0),
      sha256,
      installedKiB: Number(f.get('Installed-Size') ?? 0),
      file: `${name}_${version.replace(/:/g, '%3a')}_${arch}.deb`,
    });
  }
  const kib = packages.reduce((s, p) => s + p.installedKiB, 0);
  log(`resolved ${packages.length} packages (${(kib / 1024).toFixed(0)} MB installed) from ${DEBIAN_ROOTS.length} roots`);
  return packages.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** Parses non-recursive `apt-cache depends` output into the package each dependency would be satisfied by. */
function firstAlternatives(output: string): string[] {
  interface Alt {
    name: string;
    virtual: boolean;
    providers: string[];
  }
  const picked: string[] = [];
  let group: Alt[] = [];
  let last: Alt | undefined;
  let open = false;
  const flush = (): void => {
    for (const a of group) {
      if (!a.virtual) {
        picked.push(a.name);
        break;
      }
      if (a.providers.length > 0) {
        picked.push(a.providers[0]!);
        break;
      }
    }
    group = [];
  };
  for (const line of output.split('\n')) {
    const dep = /^ ([ |])(?:Pre)?Depends: (\S+)$/.exec(line);
    if (dep) {
      if (!open) flush();
      let name = dep[2]!;
      const virtual = name.startsWith('<');
      if (virtual) name = name.slice(1, -1);
      last = { name: name.replace(/:any$/, ''), virtual, providers: [] };
      group.push(last);
      open = dep[1] === '|';
      continue;
    }
    const provider = /^ {4}(\S+)$/.exec(line);
    if (provider && last) {
      last.providers.push(provider[1]!.replace(/:any$/, ''));
      continue;
    }
    if (/^\S/.test(line)) {
      if (!open) flush();
      last = undefined;
    }
  }
  flush();
  return picked;
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

async function debIsGood(dir: string, p: DebPackage): Promise<boolean> {
  const path = join(dir, p.file);
  const st = await stat(path).catch(() => undefined);
  if (!st || (p.size > 0 && st.size !== p.size)) return false;
  return (await sha256File(path)) === p.sha256;
}

/** Downloads what CACHE/debs lacks; returns the packages whose .deb is present and intact. A package that will not download is skipped. */
async function downloadDebs(packages: DebPackage[], dir: string, log: Log): Promise<DebPackage[]> {
  await mkdir(dir, { recursive: true });
  const missing: DebPackage[] = [];
  for (const p of packages) {
    if (await debIsGood(dir, p)) continue;
    await rm(join(dir, p.file), { force: true });
    missing.push(p);
  }
  if (missing.length === 0) {
    log(`all ${packages.length} .debs are in ${dir}`);
    return packages;
  }
  log(`downloading ${missing.length} of ${packages.length} .debs into ${dir}`);
  const t0 = Date.now();
  const CHUNK = 40;
  let done = 0;
  for (let i = 0; i < missing.length; i += CHUNK) {
    const chunk = missing.slice(i, i + CHUNK);
    const r = await run('apt-get', ['download', ...chunk.map((p) => `${p.name}=${p.version}`)], { cwd: dir });
    if (r.code !== 0) {
      log(`apt-get download of ${chunk.length} packages failed (${lastLines(r.stderr, 2)}); retrying one by one`);
      for (const p of chunk) {
        if (await debIsGood(dir, p)) continue;
        const one = await run('apt-get', ['download', `${p.name}=${p.version}`], { cwd: dir });
        if (one.code !== 0) log(`skipping ${p.name}: ${lastLines(one.stderr, 2)}`);
      }
    }
    done += chunk.length;
    log(`  ${done}/${missing.length} downloaded (${secs(t0)})`);
  }
  const good: DebPackage[] = [];
  for (const p of packages) {
    if (await debIsGood(dir, p)) good.push(p);
    else log(`skipping ${p.name}: ${p.file} is missing or does not match its SHA256`);
  }
  return good;
}

async function extractDebs(packages: DebPackage[], debs: string, dest: string, label: string, log: Log): Promise<DebPackage[]> {
  await mkdir(dest, { recursive: true });
  const ok: DebPackage[] = [];
  for (const p of packages) {
    const r = await run('dpkg', ['-x', join(debs, p.file), dest]);
    if (r.code === 0) ok.push(p);
    else log(`${label}: dpkg -x ${p.file} failed, skipping it: ${lastLines(r.stderr, 2)}`);
  }
  log(`${label}: extracted ${ok.length} packages`);
  return ok;
}

async function kind(path: string): Promise<'file' | 'dir' | 'other' | undefined> {
  const st = await lstat(path).catch(() => undefined);
  if (!st) return undefined;
  return st.isFile() ? 'file' : st.isDirectory() ? 'dir' : 'other';
}

/** Every n-th of `items`, spread over the list, at most `count`. */
function spread<T>(items: T[], count: number): T[] {
  if (items.length <= count) return items;
  const step = items.length / count;
  return Array.from({ length: count }, (_, i) => items[Math.floor(i * step + step / 2)]!);
}

/**
 * Layer 4: what a `RUN rm -rf ... && echo >> ...` step leaves behind.
 * Whiteouts of some layer-1 doc directories and binaries, an opaque directory
 * repopulated with two files, and a few config files modified.
 */
async function buildCleanupLayer(stages: string[], layer1: DebPackage[], dest: string, log: Log): Promise<string[]> {
  const [l1, l2, l3] = stages as [string, string, string];
  const inUpper = async (rel: string): Promise<boolean> => (await kind(join(l2, rel))) !== undefined || (await kind(join(l3, rel))) !== undefined;
  const done: string[] = [];
  await mkdir(dest, { recursive: true });

  const docs: string[] = [];
  for (const p of layer1) {
    const rel = `usr/share/doc/${p.name}`;
    if ((await kind(join(l1, rel))) === 'dir' && !(await inUpper(rel))) docs.push(p.name);
  }
  const docWhiteouts = spread(docs, 12);
  await mkdir(join(dest, 'usr/share/doc'), { recursive: true });
  for (const name of docWhiteouts) await writeFile(join(dest, 'usr/share/doc', `.wh.${name}`), '');
  done.push(`rm -rf ${docWhiteouts.map((n) => `/usr/share/doc/${n}`).join(' ')}`);

  const bins: string[] = [];
  for (const name of (await readdir(join(l1, 'usr/bin')).catch(() => [] as string[])).sort()) {
    if ((await kind(join(l1, 'usr/bin', name))) === 'file' && !(await inUpper(`usr/bin/${name}`))) bins.push(name);
  }
  const binWhiteouts = spread(bins, 5);
  if (binWhiteouts.length > 0) {
    await mkdir(join(dest, 'usr/bin'), { recursive: true });
    for (const name of binWhiteouts) await writeFile(join(dest, 'usr/bin', `.wh.${name}`), '');
    done.push(`rm -f ${binWhiteouts.map((n) => `/usr/bin/${n}`).join(' ')}`);
  }

  const opaqueCandidates = ['usr/share/lintian/overrides', 'usr/share/bash-completion/completions', 'etc/default'];
  let opaque: string | undefined;
  for (const rel of opaqueCandidates) if (!opaque && (await kind(join(l1, rel))) === 'dir') opaque = rel;
  if (opaque) {
    const below = new Set<string>();
    for (const s of stages) for (const n of await readdir(join(s, opaque)).catch(() => [] as string[])) below.add(n);
    const reused = [...below].sort()[0] ?? 'bench-kept';
    await mkdir(join(dest, opaque), { recursive: true });
    await writeFile(join(dest, opaque, '.wh..wh..opq'), '');
    await writeFile(join(dest, opaque, reused), `# ${reused}: rewritten by the image-ts bench cleanup layer\n`, { mode: 0o644 });
    await writeFile(join(dest, opaque, 'bench-added'), '# added by the image-ts bench cleanup layer\n', { mode: 0o644 });
    done.push(`rm -rf /${opaque} && mkdir /${opaque} && write ${reused}, bench-added`);
  }

  const modified: string[] = [];
  for (const rel of ['etc/bash.bashrc', 'etc/profile', 'usr/lib/os-release', 'etc/ssh/ssh_config', 'etc/vim/vimrc', 'etc/gitconfig', 'etc/wgetrc']) {
    if (modified.length >= 4 || (opaque && rel.startsWith(`${opaque}/`))) continue;
    for (const s of [l3, l2, l1]) {
      const path = join(s, rel);
      if ((await kind(path)) !== 'file') continue;
      const st = await stat(path);
      await mkdir(join(dest, rel, '..'), { recursive: true });
      await writeFile(join(dest, rel), Buffer.concat([await readFile(path), Buffer.from('\n# modified by the image-ts bench cleanup layer\n')]), {
        mode: st.mode & 0o7777,
      });
      modified.push(rel);
      break;
    }
  }
  if (modified.length > 0) done.push(`edit ${modified.map((r) => `/${r}`).join(' ')}`);
  log(`cleanup layer: ${docWhiteouts.length} doc dir whiteouts, ${binWhiteouts.length} file whiteouts, opaque ${opaque ?? '(none)'}, ${modified.length} modified files`);
  return done;
}

async function buildDebian(root: string, cache: string, wanted: ('debian-gzip' | 'debian-zstd')[], log: Log): Promise<BenchImage[]> {
  const t0 = Date.now();
  const debs = join(cache, 'debs');
  const packages = await downloadDebs(await resolvePackages(log), debs, log);
  const installed = packages.reduce((s, p) => s + p.installedKiB * 1024, 0);
  if (installed < MIN_DEBIAN_BYTES) {
    throw new Error(`only ${packages.length} packages (${mb(installed)} installed) could be downloaded into ${debs}; the debian images need at least ${mb(MIN_DEBIAN_BYTES)}`);
  }

  // A fixed shuffle (by a hash of the name) rather than alphabetical order, so no layer is all lib*.
  const order = (p: DebPackage): string => createHash('sha256').update(p.name).digest('hex');
  const shuffled = [...packages].sort((x, y) => (order(x) < order(y) ? -1 : 1));
  const a = Math.round(shuffled.length * 0.4);
  const b = a + Math.round(shuffled.length * 0.35);
  const groups = [shuffled.slice(0, a), shuffled.slice(a, b), shuffled.slice(b)].map((g) => g.sort((x, y) => (x.name < y.name ? -1 : 1)));
  const work = join(root, '.work-debian');
  await rm(work, { recursive: true, force: true });
  const stages = ['layer1', 'layer2', 'layer3', 'layer4'].map((n) => join(work, n));
  try {
    log(`extracting ${groups.map((g) => g.length).join(' + ')} packages into ${work}`);
    const t1 = Date.now();
    const extracted = await Promise.all(groups.map((g, i) => extractDebs(g, debs, stages[i]!, `layer ${i + 1}`, log)));
    log(`extracted in ${secs(t1)}`);
    const cleanup = await buildCleanupLayer(stages.slice(0, 3), extracted[0]!, stages[3]!, log);

    const targets = wanted.map((name) => ({
      name,
      compressor: name === 'debian-gzip' ? GZIP : ZSTD,
      writer: new LayoutWriter(join(root, `.build-${name}`)),
    }));
    for (const t of targets) await t.writer.init();
    const encoded: EncodedLayer[] = [];
    for (let i = 0; i < stages.length; i++) {
      const t2 = Date.now();
      const e = await encodeLayer(
        gnuTar(stages[i]!),
        targets.map((t) => ({ compressor: t.compressor, layout: t.writer.dir })),
      );
      encoded.push(e);
      log(`layer ${i + 1}/4: ${describeLayer(e)} (${secs(t2)})`);
      await rm(stages[i]!, { recursive: true, force: true });
    }
    const total = encoded.reduce((s, e) => s + e.uncompressedSize, 0);
    if (total < MIN_DEBIAN_BYTES) throw new Error(`the debian layers hold only ${mb(total)}; at least ${mb(MIN_DEBIAN_BYTES)} was expected`);

    const history = [
      ...groups.map((g, i) => `dpkg -x ${extracted[i]!.length} packages (${g[0]?.name} .. ${g[g.length - 1]?.name})`),
      cleanup.join(' && '),
    ];
    const files = encoded.reduce((s, e) => s + e.entries, 0);
    const images: BenchImage[] = [];
    for (const [ti, t] of targets.entries()) {
      const kindName = t.compressor === GZIP ? 'gzip -6' : 'zstd -3';
      const description = `${extracted.reduce((s, g) => s + g.length, 0)} Debian bookworm packages, 3 layers + cleanup layer (whiteouts, opaque dir), ${mb(total)} in ${files} entries, ${kindName}`;
      images.push(
        await t.writer.finish(
          join(root, t.name),
          { name: t.name, description, cmd: ['/bin/bash'], history },
          encoded.map((e) => ({ encoded: e, blob: e.blobs[ti]! })),
        ),
      );
    }
    log(`debian images built in ${secs(t0)}`);
    return images;
  } finally {
    await rm(work, { recursive: true, force: true });
    for (const name of wanted) await rm(join(root, `.build-${name}`), { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------
// Generated tars: small-files, big-file


/** A POSIX ustar header (names up to 100 bytes, which is all the generators use). */
function ustarHeader(name: string, type: 'file' | 'dir', size: number, mode: number): Buffer {
  const h = Buffer.alloc(512);
  if (Buffer.byteLength(name) > 100) throw new Error(`tar name too long: ${name}`);
  h.write(name, 0, 100, 'utf8');
  const octal = (value: number, off: number, len: number): void => {
    h.write(`${value.toString(8).padStart(len - 1, '0')}\0`, off, len, 'ascii');
  };
  octal(mode, 100, 8);
  octal(0, 108, 8);
  octal(0, 116, 8);
  octal(size, 124, 12);
  octal(EPOCH, 136, 12);
  h.write(type === 'dir' ? '5' : '0', 156, 1, 'ascii');
  h.write('ustar\0', 257, 6, 'ascii');
  h.write('00', 263, 2, 'ascii');
  h.write('root', 265, 32, 'ascii');
  h.write('root', 297, 32, 'ascii');
  octal(0, 329, 8);
  octal(0, 337, 8);
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (const byte of h) sum += byte;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'ascii');
  return h;
}

const ZERO_BLOCK = Buffer.alloc(512);

/** Collects small pieces into ~1 MiB chunks. */
class Batcher {
  private parts: Buffer[] = [];
  private bytes = 0;

  add(b: Buffer): Buffer | undefined {
    this.parts.push(b);
    this.bytes += b.length;
    return this.bytes >= MB ? this.take() : undefined;
  }

  take(): Buffer {
    const out = Buffer.concat(this.parts);
    this.parts = [];
    this.bytes = 0;
    return out;
  }
}

function entry(name: string, data: Buffer, mode = 0o644): Buffer[] {
  const pad = (512 - (data.length % 512)) % 512;
  return [ustarHeader(name, 'file', data.length, mode), data, ZERO_BLOCK.subarray(0, pad)];
}

/** Pseudo-words with a skewed frequency, so generated text compresses like prose or source does. */
class TextGen {
  private readonly words: string[];

  constructor(private readonly rand: () => number, vocabulary: number) {
    const syll = ['ba', 'ce', 'di', 'fo', 'gu', 'ha', 'je', 'ki', 'lo', 'mu', 'na', 'pe', 'qui', 'ro', 'sa', 'te', 'vi', 'wo', 'xa', 'ze', 'str', 'th', 'ch', 'sh', 'an', 'er', 'in', 'on', 'ul', 'ex'];
    this.words = Array.from({ length: vocabulary }, () => {
      let w = '';
      const n = 1 + Math.floor(rand() * 4);
      for (let i = 0; i < n; i++) w += syll[Math.floor(rand() * syll.length)];
      return w;
    });
  }

  word(): string {
    const r = this.rand();
    return this.words[Math.floor(r * r * r * this.words.length)]!;
  }

  /** About `bytes` of lines of config/source-like text. */
  text(bytes: number): string {
    const lines: string[] = [];
    let n = 0;
    while (n < bytes) {
      const r = this.rand();
      let line: string;
      if (r < 0.3) line = `${this.word()}_${this.word()} = ${Math.floor(this.rand() * 100000)}`;
      else if (r < 0.45) line = `  ${this.word()}(${this.word()}, 0x${Math.floor(this.rand() * 0xffffffff).toString(16)});`;
      else if (r < 0.55) line = `# ${this.word()} ${this.word()} ${(this.rand() * 1000).toFixed(3)} ${this.word()}`;
      else {
        const k = 3 + Math.floor(this.rand() * 10);
        const ws: string[] = [];
        for (let i = 0; i < k; i++) ws.push(this.word());
        line = ws.join(' ');
      }
      lines.push(line);
      n += line.length + 1;
    }
    return `${lines.join('\n')}\n`.slice(0, bytes);
  }
}

const SMALL_TOP = 10;
const SMALL_SUB = 100;
const SMALL_FILES_PER_DIR = 100;

function* smallFilesTar(): Generator<Buffer> {
  const rand = seededRandom(0x5eed01);
  const text = new TextGen(rand, 1500);
  const out = new Batcher();
  const emit = function* (parts: Buffer[]): Generator<Buffer> {
    for (const p of parts) {
      const full = out.add(p);
      if (full) yield full;
    }
  };
  yield* emit([ustarHeader('data/', 'dir', 0, 0o755)]);
  for (let t = 0; t < SMALL_TOP; t++) {
    const top = `data/d${String(t).padStart(2, '0')}/`;
    yield* emit([ustarHeader(top, 'dir', 0, 0o755)]);
    for (let s = 0; s < SMALL_SUB; s++) {
      const sub = `${top}s${String(s).padStart(2, '0')}/`;
      yield* emit([ustarHeader(sub, 'dir', 0, 0o755)]);
      for (let f = 0; f < SMALL_FILES_PER_DIR; f++) {
        const size = 1024 + Math.floor(rand() * 3073);
        const data = Buffer.from(text.text(size), 'utf8');
        yield* emit(entry(`${sub}f${String(f).padStart(3, '0')}-${text.word().slice(0, 12)}.txt`, data));
      }
    }
  }
  yield* emit([ZERO_BLOCK, ZERO_BLOCK]);
  yield out.take();
}

const BIG_FILE_BYTES = 512 * MB;

/**
 * 16 MiB of mixed content (text, random bytes, structured binary) sampled in
 * 64-256 KiB slices from random offsets: gzip only sees 32 KiB back, so the
 * ratio is the pool's local one, about 2.5x.
 */
function bigFilePool(rand: () => number): Buffer {
  const pool = Buffer.alloc(16 * MB);
  const text = new TextGen(rand, 1500);
  let off = 0;
  while (off < pool.length) {
    const len = Math.min(pool.length - off, 512 + Math.floor(rand() * 7680));
    const r = rand();
    if (r < 0.05) {
      for (let i = 0; i < len; i++) pool[off + i] = Math.floor(rand() * 256);
    } else if (r < 0.2) {
      // Little-endian records: a slowly growing counter, a small enum, padding.
      let v = Math.floor(rand() * 1e6);
      for (let i = 0; i + 16 <= len; i += 16) {
        pool.writeUInt32LE(v, off + i);
        pool.writeUInt32LE(Math.floor(rand() * 4), off + i + 4);
        pool.writeUInt32LE(Math.floor(rand() * 256), off + i + 8);
        v += 1 + Math.floor(rand() * 16);
      }
    } else {
      pool.write(text.text(len), off, len, 'latin1');
    }
    off += len;
  }
  return pool;
}

function* bigFileTar(): Generator<Buffer> {
  const rand = seededRandom(0xb16f11e);
  const pool = bigFilePool(rand);
  const readme = Buffer.from('image-ts bench: one large file in data/blob.bin\n');
  yield Buffer.concat([
    ...entry('README.txt', readme),
    ustarHeader('etc/', 'dir', 0, 0o755),
    ...entry('etc/hostname', Buffer.from('bench-big-file\n')),
    ustarHeader('data/', 'dir', 0, 0o755),
    ustarHeader('data/blob.bin', 'file', BIG_FILE_BYTES, 0o644),
  ]);
  let left = BIG_FILE_BYTES;
  while (left > 0) {
    const len = Math.min(left, 64 * 1024 + Math.floor(rand() * 192 * 1024));
    const start = Math.floor(rand() * (pool.length - len));
    yield pool.subarray(start, start + len);
    left -= len;
  }
  yield Buffer.concat([ZERO_BLOCK, ZERO_BLOCK]);
}

async function buildGenerated(
  root: string,
  log: Log,
  spec: { name: string; description: (e: EncodedLayer) => string; history: string; tar: () => Iterable<Buffer>; compressor?: Compressor },
): Promise<BenchImage> {
  const t0 = Date.now();
  const writer = new LayoutWriter(join(root, `.build-${spec.name}`));
  try {
    await writer.init();
    const tar = spec.tar();
    const e = await encodeLayer(
      (async function* () {
        yield* tar;
      })(),
      [{ compressor: spec.compressor ?? GZIP, layout: writer.dir }],
    );
    log(`${spec.name}: ${describeLayer(e)} (${secs(t0)})`);
    return await writer.finish(
      join(root, spec.name),
      { name: spec.name, description: spec.description(e), cmd: ['/bin/sh'], history: [spec.history] },
      [{ encoded: e, blob: e.blobs[0]! }],
    );
  } finally {
    await rm(writer.dir, { recursive: true, force: true });
  }
}

function buildSmallFiles(root: string, log: Log): Promise<BenchImage> {
  const files = SMALL_TOP * SMALL_SUB * SMALL_FILES_PER_DIR;
  return buildGenerated(root, log, {
    name: 'small-files',
    description: (e) => `${files} text-like files of 1-4 KB in ${SMALL_TOP * SMALL_SUB} directories, ${mb(e.uncompressedSize)} in one gzip layer`,
    history: `generate ${files} small files under /data`,
    tar: smallFilesTar,
  });
}

function buildBigFile(root: string, log: Log): Promise<BenchImage> {
  return buildGenerated(root, log, {
    name: 'big-file',
    description: (e) => `one ${mb(BIG_FILE_BYTES)} semi-compressible file (+2 tiny ones), ${mb(e.uncompressedSize)} in one gzip layer of ${mb(e.blobs[0]!.size)}`,
    history: 'generate /data/blob.bin',
    tar: bigFileTar,
  });
}

const ZEROS_BYTES = 2048 * MB;

/** One file of zeros: the ratio of a padded disk image or model file (gzip about 1000:1, zstd far more). */
function* zerosTar(): Generator<Buffer> {
  yield Buffer.concat([ustarHeader('data/', 'dir', 0, 0o755), ustarHeader('data/zeros.img', 'file', ZEROS_BYTES, 0o644)]);
  const chunk = Buffer.alloc(16 * MB);
  for (let left = ZEROS_BYTES; left > 0; left -= chunk.length) yield left >= chunk.length ? chunk : chunk.subarray(0, left);
  yield Buffer.concat([ZERO_BLOCK, ZERO_BLOCK]);
}

function buildZeros(root: string, log: Log, compression: 'gzip' | 'zstd'): Promise<BenchImage> {
  return buildGenerated(root, log, {
    name: `zeros-${compression}`,
    description: (e) => `one ${mb(ZEROS_BYTES)} file of zeros in one ${compression} layer of ${mb(e.blobs[0]!.size)}: memory must not follow the ratio`,
    history: 'generate /data/zeros.img',
    tar: zerosTar,
    compressor: compression === 'gzip' ? GZIP : ZSTD,
  });
}
