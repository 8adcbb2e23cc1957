import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ROOT } from '../test/helpers/cli.js';
import { unmountBelow } from '../test/helpers/mounts.js';
import type { BenchImage } from './images.js';
import { measure, type Measurement } from './measure.js';

/** One way of turning a registry image into a rootfs, measured cold. */
export interface Peer {
  readonly name: string;
  /** Anything to do before the timed run (fresh dirs, a fresh daemon); not timed. */
  prepare(image: BenchImage): Promise<void>;
  run(image: BenchImage): Promise<Measurement>;
  /**
   * Bytes the run left on the tmpfs, read after run() and before cleanup(), not
   * timed: what a guest pays in memory to keep the image. Only peers whose
   * footprint the bench compares have it.
   */
  heldBytes?(): Promise<number>;
  /** Undo mounts and delete what the run made; not timed. */
  cleanup(): Promise<void>;
  close(): Promise<void>;
}

export interface PeerContext {
  /** tmpfs scratch root. */
  readonly dir: string;
  /** 127.0.0.1:port of the bench registry. */
  readonly registry: string;
}

export const imageRef = (ctx: PeerContext, image: BenchImage): string => `${ctx.registry}/bench/${image.name}:latest`;

/**
 * The environment image-ts runs in: this one, without NODE_EXTRA_CA_CERTS.
 * Node 20 reads and parses that file at every process start, before any of
 * our code runs: 40-60 ms here, where the sandbox points it at the whole
 * system CA bundle (bench/NOTES.md). A guest does not set it, and image-ts
 * takes extra CAs through --ca-file and certs.d, loaded only when used.
 */
export const IMAGE_TS_ENV: NodeJS.ProcessEnv = { NODE_EXTRA_CA_CERTS: undefined };

/** `--snapshotter` values the bench runs image-ts with; erofs is issue 16's layer format (one EROFS image file per layer). */
export type BenchSnapshotter = 'overlay' | 'copy' | 'erofs';

/**
 * Bytes of the files under DIR that sit on DIR's own file system, each inode
 * once: `du -x` does not descend into mount points, so a bundle's overlay
 * rootfs and erofs layer mounts (wherever image-ts puts them) are not counted
 * as the views they are; the tmpfs files behind them (layer trees, layer.erofs
 * images, upper dirs, metadata) are.
 */
export function tmpfsBytesUnder(dir: string): number {
  const out = execFileSync('du', ['-s', '-x', '--block-size=1', dir], { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
  const bytes = Number(out.split('\t')[0]);
  if (!Number.isSafeInteger(bytes)) throw new Error(`du -s -x ${dir} printed ${JSON.stringify(out)}`);
  return bytes;
}

/**
 * Detaches the loop devices whose backing file lies under DIR. umount(8)
 * detaches a loop device set up with autoclear; one attached without it would
 * outlive the peer's cleanup and keep its deleted layer.erofs pinned in tmpfs,
 * so that later rounds would start with less memory and count nothing of it.
 */
function detachLoopsBelow(dir: string): void {
  const list = execFileSync('losetup', ['--list', '--noheadings', '--raw', '-O', 'NAME,BACK-FILE'], { stdio: ['ignore', 'pipe', 'ignore'] }).toString();
  for (const line of list.split('\n')) {
    const [dev, file] = line.split(' ');
    if (dev && file?.startsWith(`${dir}/`)) execFileSync('losetup', ['-d', dev]);
  }
}

/** One `image-ts pull` of the bench image, timed with the RSS of its process tree. */
function pullImageTs(ctx: PeerContext, image: BenchImage, bundle: string, workDir: string, snapshotter: BenchSnapshotter, extra: readonly string[] = []): Promise<Measurement> {
  return measure(process.execPath, [join(ROOT, 'bin', 'image-ts.js'), 'pull', imageRef(ctx, image), bundle,
    '--work-dir', workDir, '--plain-http', ctx.registry, '--snapshotter', snapshotter, '--quiet', ...extra], { env: IMAGE_TS_ENV });
}

/**
 * image-ts pull into a fresh store and bundle. Its held bytes are the whole
 * peer dir (store, snapshot dirs, bundle), not crossing into mounts: for the
 * copy snapshotter that includes the rootfs copy.
 */
export function imageTs(ctx: PeerContext, snapshotter: BenchSnapshotter, extra: readonly string[] = []): Peer {
  const dir = join(ctx.dir, `image-ts-${snapshotter}`);
  return {
    name: `image-ts (${snapshotter})`,
    async prepare() {
      await this.cleanup();
      await mkdir(dir, { recursive: true });
    },
    run(image) {
      return pullImageTs(ctx, image, join(dir, 'bundle'), join(dir, 'work'), snapshotter, extra);
    },
    async heldBytes() {
      return tmpfsBytesUnder(dir);
    },
    async cleanup() {
      unmountBelow(dir);
      if (snapshotter === 'erofs') detachLoopsBelow(dir);
      await rm(dir, { recursive: true, force: true });
    },
    async close() {},
  };
}

/** A second pull of an image already in the store, into a new bundle: what a guest pays per extra container. */
export function imageTsWarm(ctx: PeerContext): Peer {
  const dir = join(ctx.dir, 'image-ts-warm');
  let n = 0;
  return {
    name: 'image-ts warm (overlay)',
    async prepare(image) {
      await this.cleanup();
      await mkdir(dir, { recursive: true });
      const seed = await pullImageTs(ctx, image, join(dir, 'seed'), join(dir, 'work'), 'overlay');
      if (seed.exitCode !== 0) throw new Error(`warm seed pull failed: ${seed.stderrTail}`);
    },
    run(image) {
      return pullImageTs(ctx, image, join(dir, `bundle-${n++}`), join(dir, 'work'), 'overlay');
    },
    async cleanup() {
      unmountBelow(dir);
      await rm(dir, { recursive: true, force: true });
    },
    async close() {},
  };
}

/** containerd with the overlayfs snapshotter: `ctr image pull` fetches and unpacks. A fresh daemon per run. */
export function containerd(ctx: PeerContext): Peer {
  const dir = join(ctx.dir, 'containerd');
  const sock = join(dir, 'containerd.sock');
  let daemon: ChildProcess | undefined;
  const stop = async (): Promise<void> => {
    if (!daemon) return;
    const d = daemon;
    daemon = undefined;
    d.kill('SIGTERM');
    await Promise.race([new Promise((r) => d.once('exit', r)), sleep(5000)]);
    d.kill('SIGKILL');
  };
  return {
    name: 'containerd (overlayfs)',
    async prepare() {
      await this.cleanup();
      await mkdir(dir, { recursive: true });
      await writeFile(join(dir, 'config.toml'), [
        'version = 2',
        `root = "${join(dir, 'root')}"`,
        `state = "${join(dir, 'state')}"`,
        'disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]',
        '[grpc]',
        `  address = "${sock}"`,
        '[ttrpc]',
        `  address = "${sock}.ttrpc"`,
        '[debug]',
        `  address = ""`,
        '[metrics]',
        '  address = ""',
      ].join('\n'));
      daemon = spawn('containerd', ['--config', join(dir, 'config.toml'), '--log-level', 'error'], { stdio: 'ignore' });
      for (let i = 0; i < 200 && !existsSync(sock); i++) await sleep(25);
      if (!existsSync(sock)) throw new Error('containerd did not start');
      await sleep(100);
    },
    run(image) {
      return measure('ctr', ['--address', sock, '--namespace', 'bench', 'image', 'pull', '--plain-http', '--snapshotter', 'overlayfs', imageRef(ctx, image)],
        { extraPids: daemon?.pid !== undefined ? [daemon.pid] : [] });
    },
    async cleanup() {
      await stop();
      unmountBelow(dir);
      await rm(dir, { recursive: true, force: true });
    },
    async close() {
      await this.cleanup();
    },
  };
}

/** skopeo copy to an OCI layout, then umoci unpack into a bundle: the containers-tools way. */
export function skopeoUmoci(ctx: PeerContext): Peer {
  const dir = join(ctx.dir, 'skopeo-umoci');
  return {
    name: 'skopeo + umoci',
    async prepare() {
      await this.cleanup();
      await mkdir(dir, { recursive: true });
    },
    run(image) {
      const layout = join(dir, 'layout');
      return measure('sh', ['-c',
        `skopeo copy --quiet --src-tls-verify=false docker://${imageRef(ctx, image)} oci:${layout}:latest && umoci unpack --image ${layout}:latest ${join(dir, 'bundle')}`]);
    },
    async cleanup() {
      unmountBelow(dir);
      await rm(dir, { recursive: true, force: true });
    },
    async close() {},
  };
}

/** GNU tar extracting the layer blobs one after another: no network, no verification, no whiteouts. The moonshot. */
export function gnuTar(ctx: PeerContext): Peer {
  const dir = join(ctx.dir, 'gnu-tar');
  return {
    name: 'GNU tar -x (floor)',
    async prepare() {
      await this.cleanup();
      await mkdir(join(dir, 'rootfs'), { recursive: true });
    },
    run(image) {
      const blobs = image.layers.map((l) => join(image.layout, 'blobs', 'sha256', l.digest.slice(7)));
      const flag = (i: number): string => (image.layers[i]!.mediaType.endsWith('zstd') ? '--zstd' : image.layers[i]!.mediaType.endsWith('gzip') ? '-z' : '');
      const script = blobs.map((b, i) => `tar ${flag(i)} -xf ${b} -C ${join(dir, 'rootfs')}`).join(' && ');
      return measure('sh', ['-c', script]);
    },
    async cleanup() {
      await rm(dir, { recursive: true, force: true });
    },
    async close() {},
  };
}
