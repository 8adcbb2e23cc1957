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
