/**
 * Images made by real builders, and their reference unpacks: umoci makes
 * each layer by diffing a rootfs it unpacked (`umoci repack`), skopeo pushes
 * the layout to a registry, and `umoci unpack` gives the rootfs a sequential
 * apply of the layers yields.
 */
import { execFile } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

export async function run(cmd: string, args: readonly string[]): Promise<string> {
  try {
    const { stdout } = await execFileP(cmd, [...args], { encoding: 'utf8', maxBuffer: 64 << 20 });
    return stdout;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')} failed: ${e.stderr?.trim() || e.message}`);
  }
}

/** One layer: what to change in the rootfs the earlier layers make. */
export type RootfsStep = (rootfs: string) => void | Promise<void>;

/**
 * An OCI layout at `layout` holding `tag`, one umoci layer per step. Every
 * layer is umoci's own diff of the rootfs before and after the step.
 */
export async function umociImage(layout: string, tag: string, steps: readonly RootfsStep[], scratch: string): Promise<void> {
  await run('umoci', ['init', '--layout', layout]);
  await run('umoci', ['new', '--image', `${layout}:${tag}`]);
  for (const [i, step] of steps.entries()) {
    const bundle = join(scratch, `umoci-step-${i}`);
    await run('umoci', ['unpack', '--image', `${layout}:${tag}`, bundle]);
    await step(join(bundle, 'rootfs'));
    await run('umoci', ['repack', '--image', `${layout}:${tag}`, bundle]);
    await rm(bundle, { recursive: true, force: true });
  }
}

/** The reference rootfs: umoci unpacks the layers in order into one tree. */
export async function umociUnpack(layout: string, tag: string, bundle: string): Promise<string> {
  await run('umoci', ['unpack', '--image', `${layout}:${tag}`, bundle]);
  return join(bundle, 'rootfs');
}

/** Copies a layout's image to a plain-HTTP registry with skopeo, byte for byte. */
export async function pushLayout(layout: string, tag: string, host: string, repo: string): Promise<void> {
  await run('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', `oci:${layout}:${tag}`, `docker://${host}/${repo}`]);
}

/** The entries of every layer blob of the layout's image, as `tar -tv` names them. */
export async function layerListings(layout: string, tag: string): Promise<string[][]> {
  const index = JSON.parse(await run('cat', [join(layout, 'index.json')])) as { manifests: { digest: string; annotations?: Record<string, string> }[] };
  const entry = index.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === tag);
  if (!entry) throw new Error(`no ${tag} in ${layout}`);
  const blob = (digest: string): string => join(layout, 'blobs', ...digest.split(':'));
  const manifest = JSON.parse(await run('cat', [blob(entry.digest)])) as { layers: { digest: string }[] };
  const out: string[][] = [];
  for (const l of manifest.layers) out.push((await run('tar', ['-tzf', blob(l.digest)])).split('\n').filter(Boolean));
  return out;
}

/**
 * buildah, as root, with a private store under `dir` (nothing reaches the
 * host's containers storage). The overlay storage driver computes each
 * layer from the overlay upper dir, as buildah does on most hosts: a
 * deleted directory made again becomes an opaque directory, and a file
 * hard linked from a lower layer is copied up with its new name. buildah
 * run needs a runtime, so steps change the rootfs through `buildah mount`
 * (and `buildah copy` of a prepared directory, as a Dockerfile COPY does).
 * containers/storage writes the layer tars with Go's archive/tar.
 */
export class Buildah {
  constructor(private readonly dir: string) {}

  async run(...args: string[]): Promise<string> {
    return (await run('buildah', ['--root', join(this.dir, 'root'), '--runroot', join(this.dir, 'run'), '--storage-driver', 'overlay', ...args])).trim();
  }

  /**
   * An image of one layer per step, each buildah's own diff of the rootfs
   * before and after it, committed as `names` in each format (the same
   * layers, a docker v2s2 or an OCI manifest and config).
   */
  async image(names: { docker: string; oci: string }, steps: readonly BuildahStep[]): Promise<void> {
    let from = 'scratch';
    for (const [i, step] of steps.entries()) {
      const container = await this.run('from', '--quiet', '--pull-never', from);
      await step({ rootfs: await this.run('mount', container), copy: (src: string, dest: string) => this.run('copy', '--quiet', container, src, dest).then(() => undefined) });
      const last = i === steps.length - 1;
      from = last ? names.oci : `${names.oci}-step${i}`;
      await this.run('commit', '--quiet', '--format', 'oci', container, from);
      if (last) await this.run('commit', '--quiet', '--format', 'docker', container, names.docker);
      await this.run('rm', container);
    }
  }

  /** Pushes an image to a plain-HTTP registry, as a docker v2s2 or an OCI manifest. */
  async push(image: string, host: string, repo: string, format: 'v2s2' | 'oci'): Promise<void> {
    await this.run('push', '--quiet', '--tls-verify=false', '--format', format, image, `docker://${host}/${repo}`);
  }

  /** The image as an OCI layout (the layers as they are), for umoci. */
  async layout(image: string, layout: string, tag: string): Promise<void> {
    await this.run('push', '--quiet', '--format', 'oci', image, `oci:${layout}:${tag}`);
  }

  /** Unmounts and removes every container and image of the private store. */
  async cleanup(): Promise<void> {
    await this.run('unmount', '--all').catch(() => undefined);
    await this.run('rm', '--all').catch(() => undefined);
    await this.run('rmi', '--all', '--force').catch(() => undefined);
  }
}

/** One step of a buildah image: change the mounted rootfs, or copy a prepared directory in. */
export type BuildahStep = (ctx: { readonly rootfs: string; copy(src: string, dest: string): Promise<void> }) => void | Promise<void>;

/** The manifest's media type, as the registry serves it. */
export async function manifestMediaType(host: string, repo: string): Promise<string> {
  const raw = await run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${host}/${repo}`]);
  return (JSON.parse(raw) as { mediaType?: string }).mediaType ?? '';
}
